package rootfs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
)

// memoRead reads /etc/passwd through Memo; loads counts the reads.
func memoRead(t *testing.T, r *rootfs.Root, loads *int) string {
	t.Helper()
	v, err := r.Memo("passwd", []string{"/etc/passwd"}, func() (any, error) {
		*loads++
		b, err := r.ReadFile("/etc/passwd")
		return string(b), err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v.(string)
}

func TestMemoForgetsWhatChanges(t *testing.T) {
	r := rootfstest.NewRoot(t, map[string]string{
		"etc/passwd": "a\n",
		"etc/other":  "x\n",
	})
	loads := 0
	memoRead(t, r, &loads)
	memoRead(t, r, &loads)
	if loads != 1 {
		t.Fatalf("loaded %d times without a change, want 1", loads)
	}

	// A change of another file, even beside it, keeps the memo.
	if err := r.WriteFile("/etc/other", []byte("y\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if err := r.MkdirAll("/etc/bench", 0o755, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	memoRead(t, r, &loads)
	if loads != 1 {
		t.Fatalf("a write of /etc/other or /etc/bench reloaded /etc/passwd (%d loads)", loads)
	}

	// The file itself.
	if err := r.WriteFile("/etc/passwd", []byte("b\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if got := memoRead(t, r, &loads); got != "b\n" || loads != 2 {
		t.Fatalf("after writing /etc/passwd: %q, %d loads", got, loads)
	}

	// A directory above it.
	if err := r.Chmod("/etc", 0o755); err != nil {
		t.Fatal(err)
	}
	memoRead(t, r, &loads)
	if loads != 3 {
		t.Fatalf("a change of /etc kept the memo (%d loads)", loads)
	}

	// Behind the Root's back (a program ran): Forget.
	os.WriteFile(filepath.Join(r.Dir, "etc/passwd"), []byte("c\n"), 0o644)
	r.Forget()
	if got := memoRead(t, r, &loads); got != "c\n" || loads != 4 {
		t.Fatalf("after Forget: %q, %d loads", got, loads)
	}
}

// A memo of a path that resolves through a symlink is dropped when the
// target it resolved to changes, and when any symlink is changed.
func TestMemoFollowsSymlinks(t *testing.T) {
	r := rootfstest.NewRoot(t, map[string]string{
		"srv/pw":     "s\n",
		"srv/pw2":    "t\n",
		"etc/passwd": "->/srv/pw",
		"etc/hop":    "->/srv",
	})
	loads := 0
	memoRead(t, r, &loads)
	if err := r.WriteFile("/srv/pw", []byte("s2\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if got := memoRead(t, r, &loads); got != "s2\n" || loads != 2 {
		t.Fatalf("after writing the symlink's target: %q, %d loads", got, loads)
	}
	// Replacing an unrelated symlink drops every memo: it might have been
	// on the way.
	if err := r.Symlink("/srv/pw2", "/etc/hop"); err != nil {
		t.Fatal(err)
	}
	memoRead(t, r, &loads)
	if loads != 3 {
		t.Fatalf("a changed symlink kept the memo (%d loads)", loads)
	}
	if err := r.Symlink("/srv/pw2", "/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	if got := memoRead(t, r, &loads); got != "t\n" {
		t.Fatalf("after repointing /etc/passwd: %q", got)
	}
}

// Resolution remembers directories it has seen; a directory replaced by a
// symlink, through the Root or behind it (then Forget), is followed again,
// and never out of the root.
func TestKnownDirectoriesFollowReplacement(t *testing.T) {
	r := rootfstest.NewRoot(t, map[string]string{"d/f": "1\n", "e/": ""})
	if err := r.WriteFile("/d/x", []byte("x\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/d/x", "/d/f"} {
		if err := r.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove("/d"); err != nil {
		t.Fatal(err)
	}
	if err := r.Symlink("/e", "/d"); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/d/y", []byte("y\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "e/y")); err != nil {
		t.Fatalf("/d/y did not follow the new symlink /d -> /e: %v", err)
	}

	// Behind the Root's back: /e becomes a symlink out of the root.
	outside := t.TempDir()
	os.Remove(filepath.Join(r.Dir, "e/y"))
	os.Remove(filepath.Join(r.Dir, "e"))
	os.Symlink(outside, filepath.Join(r.Dir, "e"))
	r.Forget()
	if err := r.WriteFile("/e/z", []byte("z\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(outside, "z")); err == nil {
		t.Fatal("/e/z was written outside the root")
	}
}

// batchJournal records what PreserveAll hands it.
type batchJournal struct{ batches [][]string }

func (b *batchJournal) Preserve(string) error { return nil }
func (b *batchJournal) PreserveAll(hosts []string) error {
	b.batches = append(b.batches, hosts)
	return nil
}

// PreserveAll hands the journal each path, a missing one as its topmost
// missing ancestor (created by the write, removed by a rollback), and
// leaves out what the write itself must refuse.
func TestPreserveAllNamesTopmostMissing(t *testing.T) {
	r := rootfstest.NewRoot(t, map[string]string{"etc/hostname": "old\n", "etc/link": "->/../../outside"})
	j := &batchJournal{}
	r.Journal = j
	if err := r.PreserveAll("/etc/hostname", "/etc/bench/sub/file.conf", "/var/lib/provision/instance-id", "/etc/link/x"); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(r.Dir, "etc/hostname"), filepath.Join(r.Dir, "etc/bench"), filepath.Join(r.Dir, "var")}
	if len(j.batches) != 1 || strings.Join(j.batches[0], " ") != strings.Join(want, " ") {
		t.Fatalf("batches %v, want one: %v", j.batches, want)
	}
}

// PreserveAll announces changes; it makes none: what was read of the
// target stays known until the write itself.
func TestPreserveAllKeepsMemos(t *testing.T) {
	r := rootfstest.NewRoot(t, map[string]string{"etc/passwd": "a\n"})
	r.Journal = &batchJournal{}
	loads := 0
	memoRead(t, r, &loads)
	if err := r.PreserveAll("/etc/passwd"); err != nil {
		t.Fatal(err)
	}
	memoRead(t, r, &loads)
	if loads != 1 {
		t.Fatalf("PreserveAll made the memo reload (%d loads)", loads)
	}
	if err := r.WriteFile("/etc/passwd", []byte("b\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if got := memoRead(t, r, &loads); got != "b\n" || loads != 2 {
		t.Fatalf("after the write: %q, %d loads", got, loads)
	}
}
