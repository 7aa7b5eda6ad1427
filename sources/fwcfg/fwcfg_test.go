package fwcfg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/fwcfg"
)

// fakeFwCfg lays entries out as the qemu_fw_cfg driver does: one directory
// per entry under by_key with raw, size, key and name files, and under
// by_name a relative symlink to it at the entry's name (slashes nest).
func fakeFwCfg(t *testing.T, entries map[string]string) string {
	t.Helper()
	prefix := t.TempDir()
	base := filepath.Join(prefix, fwcfg.ByName)
	key := 0x20
	for name, data := range entries {
		keyDir := filepath.Join(filepath.Dir(base), "by_key", fmt.Sprint(key))
		if err := os.MkdirAll(keyDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, c := range map[string]string{"raw": data, "size": fmt.Sprintf("%d\n", len(data)), "name": name + "\n", "key": fmt.Sprintf("%d\n", key)} {
			if err := os.WriteFile(filepath.Join(keyDir, f), []byte(c), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		link := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(filepath.Dir(link), keyDir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, link); err != nil {
			t.Fatal(err)
		}
		key++
	}
	// Entries QEMU itself adds must be ignored.
	if err := os.MkdirAll(filepath.Join(base, "etc/boot-fail-wait"), 0o755); err != nil {
		t.Fatal(err)
	}
	return prefix
}

func TestFetch(t *testing.T) {
	prefix := fakeFwCfg(t, map[string]string{
		"opt/org.opensuse.combustion/script":         "#!/bin/sh\necho fw\n",
		"opt/org.opensuse.combustion/ssh/key.pub":    "ssh-ed25519 AAAA\n",
		"opt/org.opensuse.combustion/aaa-first-name": "sorted before script",
		"opt/io.provision/files/motd":                "hello\n",
		"opt/com.coreos/config":                      `{"ignition":{"version":"3.4.0"}}`,
	})
	s := &fwcfg.Source{Prefix: prefix}
	if p := s.Detect(&sources.Facts{}); p != sources.Present {
		t.Fatalf("Detect = %v", p)
	}
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := `fwcfg|script|combustion|#!/bin/sh
echo fw

fwcfg|aaa-first-name|combustion|sorted before script
fwcfg|ssh/key.pub|combustion|ssh-ed25519 AAAA

fwcfg|files/motd|combustion|hello

fwcfg|opt/com.coreos/config|ignition|{"ignition":{"version":"3.4.0"}}
`
	if got := blockdevtest.Summary(docs); got != want {
		t.Errorf("documents:\n%s\nwant:\n%s", got, want)
	}
}

func TestOnlyIgnition(t *testing.T) {
	prefix := fakeFwCfg(t, map[string]string{"opt/com.coreos/config": "{}"})
	docs, err := (&fwcfg.Source{Prefix: prefix}).Fetch(context.Background())
	if err != nil || blockdevtest.Summary(docs) != "fwcfg|opt/com.coreos/config|ignition|{}\n" {
		t.Errorf("%v\n%s", err, blockdevtest.Summary(docs))
	}
}

func TestAbsentAndLimits(t *testing.T) {
	prefix := fakeFwCfg(t, nil)
	s := &fwcfg.Source{Prefix: prefix}
	if p := s.Detect(&sources.Facts{}); p != sources.Absent {
		t.Errorf("Detect = %v", p)
	}
	if _, err := s.Fetch(context.Background()); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("Fetch = %v", err)
	}
	if _, err := (&fwcfg.Source{Prefix: t.TempDir()}).Fetch(context.Background()); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("no fw_cfg at all: %v", err)
	}
	big := fakeFwCfg(t, map[string]string{"opt/org.opensuse.combustion/script": strings.Repeat("x", 2000)})
	if _, err := (&fwcfg.Source{Prefix: big, MaxFileSize: 1000}).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("oversized blob: %v", err)
	}
	dup := fakeFwCfg(t, map[string]string{"opt/org.opensuse.combustion/script": "a", "opt/io.provision/script": "b"})
	if _, err := (&fwcfg.Source{Prefix: dup}).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "both give") {
		t.Errorf("duplicate: %v", err)
	}
}
