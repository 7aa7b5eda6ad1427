package snapshot

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRecoverRefusesPlantedManifest: a target carrying a journal whose
// manifest names paths outside the root (absolute host paths, "..", a
// symlink planted in the root leading out) is refused with an error naming
// the path; nothing outside the root is created, changed or deleted, and
// nothing inside is restored either.
func TestRecoverRefusesPlantedManifest(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "host")
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "victim"), []byte("keep"), 0o644)
	os.MkdirAll(filepath.Join(base, "root/etc"), 0o755)
	os.WriteFile(filepath.Join(base, "root/etc/inside"), []byte("inside"), 0o644)
	root := filepath.Join(base, "root")
	os.Symlink(outside, filepath.Join(root, "etc/link"))
	for name, entries := range map[string][]map[string]any{
		"host path absent": {{"seq": 1, "path": filepath.Join(root, "etc/inside"), "kind": "absent"}, {"seq": 2, "path": filepath.Join(outside, "victim"), "kind": "absent"}},
		"host path setuid": {{"seq": 1, "path": filepath.Join(outside, "suid"), "kind": "file", "mode": 0o4755}},
		"dotdot":           {{"seq": 1, "path": root + "/../host/victim", "kind": "absent"}},
		"symlink escape":   {{"seq": 1, "path": filepath.Join(root, "etc/link/victim"), "kind": "absent"}},
		"host times":       {{"seq": 1, "path": outside, "kind": "times", "atime": 1, "mtime": 1}},
	} {
		t.Run(name, func(t *testing.T) {
			jdir := filepath.Join(root, JournalDirName, "20260101T000000Z-1")
			os.RemoveAll(filepath.Join(root, JournalDirName))
			os.MkdirAll(filepath.Join(jdir, "data"), 0o700)
			var lines []string
			for _, e := range entries {
				b, _ := json.Marshal(e)
				lines = append(lines, string(b))
				if e["kind"] == "file" {
					os.WriteFile(filepath.Join(jdir, "data", "1"), []byte("#!/bin/sh\n"), 0o600)
				}
			}
			os.WriteFile(filepath.Join(jdir, "manifest"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
			st, _ := os.Stat(outside)
			err := Recover(context.Background(), root)
			if err == nil || !strings.Contains(err.Error(), "outside the root") && !strings.Contains(err.Error(), "bad path") {
				t.Fatalf("got %v, want a refusal naming the path", err)
			}
			if b, err := os.ReadFile(filepath.Join(outside, "victim")); err != nil || string(b) != "keep" {
				t.Errorf("the host file was deleted or changed: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "suid")); err == nil {
				t.Error("a file was created on the host")
			}
			if st2, _ := os.Stat(outside); !st2.ModTime().Equal(st.ModTime()) {
				t.Error("the host directory's times changed")
			}
			if _, err := os.Stat(filepath.Join(root, "etc/inside")); err != nil {
				t.Error("a refused journal was partly applied inside the root")
			}
		})
	}
}

// TestRecoverRefusesJournalDirSymlink: .provision-journal itself a
// symlink to a host directory is refused, not recovered (which would
// delete the journals it finds there).
func TestRecoverRefusesJournalDirSymlink(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "host")
	os.MkdirAll(filepath.Join(host, "x"), 0o755)
	root := filepath.Join(base, "root")
	os.MkdirAll(root, 0o755)
	os.Symlink(host, filepath.Join(root, JournalDirName))
	if err := Recover(context.Background(), root); err == nil {
		t.Fatal("a symlinked journal directory was accepted")
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err != nil {
		t.Fatal("recovery deleted a host directory")
	}
}
