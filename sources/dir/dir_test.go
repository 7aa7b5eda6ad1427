package dir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func kinds(docs []sources.Document) map[string]sources.Kind {
	m := map[string]sources.Kind{}
	for _, d := range docs {
		m[d.Origin.File] = d.Kind
	}
	return m
}

func TestLayouts(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  map[string]sources.Kind
	}{
		{"nocloud", map[string]string{"user-data": "#cloud-config\n", "meta-data": "instance-id: x\n", "network-config": "version: 2\n"},
			map[string]sources.Kind{"user-data": sources.KindUserData, "meta-data": sources.KindMetaData, "network-config": sources.KindNetworkConfig}},
		{"combustion medium", map[string]string{"combustion/script": "#!/bin/sh\n", "combustion/keys/a.pub": "k", "ignition/config.ign": "{}", "other": "x"},
			map[string]sources.Kind{"combustion/script": sources.KindCombustion, "combustion/keys/a.pub": sources.KindCombustion, "ignition/config.ign": sources.KindIgnition}},
		{"combustion dir", map[string]string{"script": "#!/bin/sh\n", "f": "x"},
			map[string]sources.Kind{"script": sources.KindCombustion, "f": sources.KindCombustion}},
		{"configdrive dated", map[string]string{"openstack/2012-08-10/meta_data.json": "{}", "openstack/2015-10-15/meta_data.json": `{"uuid":"u"}`, "openstack/2015-10-15/user_data": "#cloud-config\n"},
			map[string]sources.Kind{"openstack/2015-10-15/meta_data.json": sources.KindOpenStackMetaData, "openstack/2015-10-15/user_data": sources.KindUserData}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, tc.files)
			docs, err := New(root).Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			got := kinds(docs)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: kind %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestNoCloudMissingFileNamed(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"user-data": "#cloud-config\n"})
	_, err := New(root).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "meta-data is missing") {
		t.Fatalf("err = %v, want it to name meta-data", err)
	}
}

func TestEmptyDirNotFound(t *testing.T) {
	_, err := New(t.TempDir()).Fetch(context.Background())
	if !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestSymlinkNotFollowed(t *testing.T) {
	root := t.TempDir()
	write(t, root, map[string]string{"script": "#!/bin/sh\n"})
	if err := os.Symlink("/etc/passwd", filepath.Join(root, "passwd")); err != nil {
		t.Fatal(err)
	}
	// A symlink leading out of the seed is an error naming it (it was
	// skipped silently once; a config missing a file it ships is worse).
	docs, err := New(root).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "passwd") {
		t.Fatalf("want an error naming passwd, got %v", err)
	}
	if _, ok := kinds(docs)["passwd"]; ok {
		t.Fatal("symlink to a host file was read into the config")
	}
	// One to a file inside the seed is skipped, as every symlink was.
	os.Remove(filepath.Join(root, "passwd"))
	os.Symlink("script", filepath.Join(root, "again"))
	docs, err = New(root).Fetch(context.Background())
	if err != nil || len(docs) != 1 {
		t.Fatalf("%v, %d docs", err, len(docs))
	}
}

func TestFileSourceRefusesBinary(t *testing.T) {
	for name, tc := range map[string]struct {
		data   string
		binary bool
	}{
		"cloud-config":    {"#cloud-config\nhostname: x\n", false},
		"script":          {"#!/bin/sh\necho hi\n", false},
		"gzip user-data":  {"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", false},
		"fat boot sector": {"\xeb<\x90mkfs.fat\x00\x02\x04\x01\x00", true},
		"zeros of an iso": {strings.Repeat("\x00", 4096), true},
		"nul after 8 KiB": {strings.Repeat("a", 9000) + "\x00", false},
		"empty file":      {"", false},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "seed.bin")
			if err := os.WriteFile(p, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			docs, err := NewFile(p).Fetch(context.Background())
			if tc.binary {
				if !errors.Is(err, ErrBinary) || !strings.Contains(err.Error(), p) {
					t.Fatalf("got %v, %v; want ErrBinary naming %s", docs, err, p)
				}
				return
			}
			if err != nil || len(docs) != 1 {
				t.Fatalf("got %d docs, %v", len(docs), err)
			}
		})
	}
}
