package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// manifestLines is how many entries the journal's manifest holds.
func manifestLines(t *testing.T, jdir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(jdir, "manifest"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// What a run creates below a directory it created needs no record of its
// own: the rollback removes the directory with everything in it. A small
// original is kept in its record, a large one in data/SEQ; both come back.
func TestRecordsWhatRollbackNeedsOnly(t *testing.T) {
	tree := t.TempDir()
	small := filepath.Join(tree, "small.conf")
	large := filepath.Join(tree, "large.bin")
	bigData := bytes.Repeat([]byte("0123456789abcdef"), (maxInline+1024)/16)
	os.WriteFile(small, []byte("original\n"), 0o640)
	os.WriteFile(large, bigData, 0o600)
	jdir := filepath.Join(t.TempDir(), "journal.1")
	j, err := Create(jdir, Options{})
	if err != nil {
		t.Fatal(err)
	}

	newDir := filepath.Join(tree, "home/alice")
	for _, p := range []string{filepath.Join(tree, "home"), newDir} {
		if err := j.Preserve(p); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(p, 0o755)
	}
	records := manifestLines(t, jdir)
	for _, p := range []string{newDir + "/.ssh", newDir + "/.ssh/authorized_keys", newDir + "/.bashrc"} {
		if err := j.Preserve(p); err != nil {
			t.Fatal(err)
		}
	}
	if n := manifestLines(t, jdir); n != records {
		t.Errorf("paths below a directory the run made added %d records", n-records)
	}
	os.MkdirAll(newDir+"/.ssh", 0o700)
	os.WriteFile(newDir+"/.ssh/authorized_keys", []byte("key\n"), 0o600)

	for _, p := range []string{small, large} {
		if err := j.Preserve(p); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte("changed\n"), 0o644)
	}
	if entries, _ := os.ReadDir(filepath.Join(jdir, "data")); len(entries) != 1 {
		t.Errorf("data/ holds %d copies, want 1 (the large file; the small one is inline)", len(entries))
	}
	if err := j.Rollback(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(tree, "home")); err == nil {
		t.Error("the directory the run made is still there")
	}
	for p, want := range map[string][]byte{small: []byte("original\n"), large: bigData} {
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s not restored (%d bytes, %v)", p, len(got), err)
		}
	}
	if st, err := os.Stat(small); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("%s mode not restored: %v", small, st.Mode())
	}
}

// PreserveAll records every path (and each parent's times) at once; the
// writes that follow find them recorded and add nothing; a rollback
// restores them all.
func TestPreserveAllRecordsOnceForAll(t *testing.T) {
	tree := t.TempDir()
	paths := []string{filepath.Join(tree, "etc/passwd"), filepath.Join(tree, "etc/passwd-"), filepath.Join(tree, "etc/group"), filepath.Join(tree, "etc/group-")}
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.WriteFile(paths[0], []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(paths[2], []byte("root:x:0:\n"), 0o644)
	jdir := filepath.Join(t.TempDir(), "journal.1")
	j, err := Create(jdir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.PreserveAll(append(paths, paths[0])); err != nil {
		t.Fatal(err)
	}
	// /etc's times, then the four paths (a path named twice: once).
	if n := manifestLines(t, jdir); n != 5 {
		t.Fatalf("%d records, want 5", n)
	}
	for _, p := range paths {
		if err := j.Preserve(p); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(p, []byte("changed\n"), 0o600)
	}
	if n := manifestLines(t, jdir); n != 5 {
		t.Fatalf("the writes added %d records", n-5)
	}
	if err := j.Rollback(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(paths[0]); string(b) != "root:x:0:0::/root:/bin/sh\n" {
		t.Errorf("passwd: %q", b)
	}
	if _, err := os.Lstat(paths[1]); err == nil {
		t.Error("passwd- the run created is still there")
	}
}
