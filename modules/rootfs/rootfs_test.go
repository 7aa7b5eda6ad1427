package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func newRoot(t *testing.T) (*Root, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "root")
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r, base
}

func TestResolveChrootSemantics(t *testing.T) {
	r, _ := newRoot(t)
	os.MkdirAll(filepath.Join(r.Dir, "usr/etc"), 0o755)
	// An absolute symlink inside the target means a path inside the target.
	if err := os.Symlink("/usr/etc", filepath.Join(r.Dir, "etc/alt")); err != nil {
		t.Fatal(err)
	}
	got, err := r.Resolve("/etc/alt/file")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(r.Dir, "usr/etc/file"); got != want {
		t.Errorf("Resolve = %s, want %s", got, want)
	}
}

func TestEscapesRefused(t *testing.T) {
	r, base := newRoot(t)
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	// A relative symlink climbing out of the root, planted in the target.
	if err := os.Symlink("../../outside", filepath.Join(r.Dir, "etc/evil")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/../outside/x", "/etc/../../outside/x", "/etc/evil/x"} {
		err := r.WriteFile(p, []byte("pwned"), 0o644, Owner{-1, -1})
		if !errors.Is(err, ErrEscape) {
			t.Errorf("WriteFile(%s) err = %v, want ErrEscape", p, err)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("something was written outside the root: %v", entries)
	}
}

func TestWriteReplacesFinalSymlinkInsteadOfFollowing(t *testing.T) {
	r, base := newRoot(t)
	victim := filepath.Join(base, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	if err := os.Symlink(victim, filepath.Join(r.Dir, "etc/motd")); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/etc/motd", []byte("hello\n"), 0o644, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Fatalf("host file changed: %q", b)
	}
	b, err := os.ReadFile(filepath.Join(r.Dir, "etc/motd"))
	if err != nil || string(b) != "hello\n" {
		t.Fatalf("motd = %q, %v", b, err)
	}
}

func TestAppendAndModes(t *testing.T) {
	r, _ := newRoot(t)
	if err := r.AppendFile("/etc/a/b/c", []byte("one\n"), 0o600, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if err := r.AppendFile("/etc/a/b/c", []byte("two\n"), 0, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	b, _ := r.ReadFile("/etc/a/b/c")
	if string(b) != "one\ntwo\n" {
		t.Errorf("content %q", b)
	}
	st, _ := r.Stat("/etc/a/b/c")
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v kept after append", st.Mode())
	}
	if err := r.MkdirAll("/srv/data", 0o2750, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	st, _ = r.Stat("/srv/data")
	if st.Mode()&os.ModeSetgid == 0 || st.Mode().Perm() != 0o750 {
		t.Errorf("dir mode %v", st.Mode())
	}
}

type recordingJournal []string

func (j *recordingJournal) Preserve(p string) error { *j = append(*j, p); return nil }

func TestJournalToldBeforeWrites(t *testing.T) {
	r, _ := newRoot(t)
	var j recordingJournal
	r.Journal = &j
	r.WriteFile("/etc/new/file", []byte("x"), 0o644, Owner{-1, -1})
	r.Symlink("/usr/share/zoneinfo/UTC", "/etc/localtime")
	want := []string{filepath.Join(r.Dir, "etc/new"), filepath.Join(r.Dir, "etc/new/file"), filepath.Join(r.Dir, "etc/localtime")}
	if len(j) != len(want) {
		t.Fatalf("journal %v, want %v", j, want)
	}
	for i := range want {
		if j[i] != want[i] {
			t.Errorf("journal[%d] = %s, want %s", i, j[i], want[i])
		}
	}
}

func FuzzResolve(f *testing.F) {
	f.Add("/etc/../x/./y")
	f.Fuzz(func(t *testing.T, p string) {
		r := &Root{Dir: "/nonexistent-provision-root"}
		h, err := r.Resolve(p)
		if err == nil && h != r.Dir && !filepathHasPrefix(h, r.Dir+"/") {
			t.Fatalf("Resolve(%q) = %q escapes", p, h)
		}
	})
}

func filepathHasPrefix(p, prefix string) bool {
	return len(p) >= len(prefix) && p[:len(prefix)] == prefix
}
