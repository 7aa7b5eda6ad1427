package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
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

// ReadFile and Stat follow a symlink in the last component inside the
// root, as in a chroot, though they try the component as it is first: an
// absolute link names the target's file, never the host's of that name;
// a relative one may not climb out; a dangling one is missing.
func TestReadAndStatFollowTheLastLinkInside(t *testing.T) {
	r, base := newRoot(t)
	if err := os.WriteFile(filepath.Join(r.Dir, "etc/hostname"), []byte("inside\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The host's /etc/hostname is another file: the link must not reach it.
	for link, target := range map[string]string{"etc/alias": "/etc/hostname", "etc/relative": "hostname", "etc/chain": "/etc/alias", "etc/dangling": "/etc/none", "etc/evil": "../../outside"} {
		if err := os.Symlink(target, filepath.Join(r.Dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "outside"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/etc/hostname", "/etc/alias", "/etc/relative", "/etc/chain"} {
		b, err := r.ReadFile(p)
		if err != nil || string(b) != "inside\n" {
			t.Errorf("ReadFile(%s) = %q, %v; want the target's /etc/hostname", p, b, err)
		}
		st, err := r.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Size() != int64(len("inside\n")) {
			t.Errorf("Stat(%s) = %v, %v; want the target's /etc/hostname", p, st, err)
		}
	}
	if _, err := r.ReadFile("/etc/dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadFile of a dangling link: %v, want not-exist", err)
	}
	if _, err := r.Stat("/etc/dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a dangling link: %v, want not-exist", err)
	}
	if _, err := r.Stat("/etc/none"); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "stat ") {
		t.Errorf("Stat of a missing file: %v, want a stat error that it does not exist", err)
	}
	for _, read := range []func(string) error{
		func(p string) error { _, err := r.ReadFile(p); return err },
		func(p string) error { _, err := r.Stat(p); return err },
	} {
		if err := read("/etc/evil"); !errors.Is(err, ErrEscape) {
			t.Errorf("a link climbing out of the root: %v, want ErrEscape", err)
		}
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

// ResolveFollow agrees with the kernel's own confined resolution,
// openat2(RESOLVE_IN_ROOT), on every path that exists in a tree of
// directories, files and relative, absolute, chained and looping
// symlinks (paths climbing above the root are refused here and clamped
// there, so they are left out).
func TestResolveMatchesKernel(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"a/b/c", "d", "e/f"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	for _, f := range []string{"a/b/c/file", "d/file", "top"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	for link, target := range map[string]string{
		"abs":        "/a/b",
		"rel":        "a/b/c",
		"a/up":       "../d",
		"a/b/dots":   "../../e/./f",
		"d/chain":    "/abs/c",
		"e/escape":   "../../../../d",
		"e/loop1":    "loop2",
		"e/loop2":    "loop1",
		"e/f/tofile": "/a/b/c/file",
		"dangling":   "/nowhere/x",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	rootFD, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFD)
	r, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"a", "b", "c", "d", "e", "f", "abs", "rel", "up", "dots", "chain", "escape", "loop1", "tofile", "file", "top", "dangling", ".", ".."}
	rnd := rand.New(rand.NewPCG(1, 2))
	compared := 0
	for i := 0; i < 20000; i++ {
		parts := make([]string, 1+rnd.IntN(5))
		for j := range parts {
			parts[j] = names[rnd.IntN(len(names))]
		}
		p := "/" + strings.Join(parts, "/")
		fd, kerr := unix.Openat2(rootFD, strings.TrimPrefix(p, "/"), &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
		if errors.Is(kerr, unix.ENOSYS) {
			t.Skip("no openat2 on this kernel")
		}
		h, err := r.ResolveFollow(p)
		if errors.Is(err, ErrEscape) {
			if kerr == nil {
				unix.Close(fd)
			}
			continue
		}
		if kerr != nil {
			continue // a missing path: ours names where it would be made
		}
		kernel, lerr := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		unix.Close(fd)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if err != nil {
			t.Errorf("ResolveFollow(%q): %v; the kernel finds %s", p, err, kernel)
			continue
		}
		if h != kernel {
			t.Errorf("ResolveFollow(%q) = %s, the kernel resolves %s", p, h, kernel)
		}
		compared++
	}
	if compared < 1000 {
		t.Fatalf("only %d existing paths compared", compared)
	}
}

// TestWriteNewInMadeDirectory: a file new in a directory the Root made is
// written in place (no temporary file or rename), with its mode, and the
// journal still hears of it before it exists (the labels follow what it
// hears); what is already there, a symlink included, is replaced as any
// write replaces, never followed.
func TestWriteNewInMadeDirectory(t *testing.T) {
	r, _ := newRoot(t)
	rec := &recorder{}
	r.Journal = rec
	me := Owner{-1, -1}
	if err := r.MkdirAll("/home/alice", 0o750, me); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(r.Dir, "home/alice")
	if !r.madeDir(home) || !r.madeDir(filepath.Dir(home)) {
		t.Fatalf("made directories not known: %v", r.made)
	}
	if err := r.WriteFile("/home/alice/.profile", []byte("one\n"), 0o640, me); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(home, ".profile")
	st, err := os.Lstat(p)
	if err != nil || st.Mode() != 0o640 {
		t.Fatalf("new file: %v %v", st, err)
	}
	if !slices.Contains(rec.paths, p) {
		t.Errorf("the journal did not hear of %s: %v", p, rec.paths)
	}
	// Again: it exists now, and is replaced.
	if err := r.WriteFile("/home/alice/.profile", []byte("two\n"), 0o600, me); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two\n" {
		t.Errorf("rewrite: %q", b)
	}
	// A symlink planted in the made directory is replaced, not followed.
	outside := filepath.Join(r.Dir, "etc/secret")
	os.WriteFile(outside, []byte("keep"), 0o600)
	if err := os.Symlink("/etc/secret", filepath.Join(home, "link")); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/home/alice/link", []byte("x"), 0o644, me); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep" {
		t.Errorf("the write followed the symlink: %q", b)
	}
	if st, err := os.Lstat(filepath.Join(home, "link")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("the symlink was not replaced: %v %v", st, err)
	}
	ents, _ := os.ReadDir(home)
	if len(ents) != 2 {
		t.Errorf("left in the home: %v", ents)
	}
	// A directory that was there before is not one the run made; a made
	// one stays made through a change of its mode, not its removal.
	if err := r.MkdirAll("/etc", 0o755, me); err != nil {
		t.Fatal(err)
	}
	if r.madeDir(filepath.Join(r.Dir, "etc")) {
		t.Error("an existing directory counted as made")
	}
	if err := r.Chmod("/home/alice", 0o700); err != nil {
		t.Fatal(err)
	}
	if !r.madeDir(home) {
		t.Error("no longer counted as made after a change of its mode")
	}
	if err := r.MkdirAll("/home/alice/sub", 0o755, me); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("/home/alice/sub"); err != nil {
		t.Fatal(err)
	}
	if r.madeDir(filepath.Join(home, "sub")) || !r.madeDir(home) {
		t.Errorf("after removing a made directory: %v", r.made)
	}
}

// TestWriteNewFailureLeavesNothing: a write into a made directory that
// fails half-way (the data's write, made to fail with EIO by the fault
// rules, in a child process as they are read once per process) returns the
// error and removes the file it created.
func TestWriteNewFailureLeavesNothing(t *testing.T) {
	if os.Getenv("ROOTFS_TEST_WRITE_NEW_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriteNewFailureLeavesNothing$", "-test.v")
		cmd.Env = append(os.Environ(), "ROOTFS_TEST_WRITE_NEW_CHILD=1", fault.Env+"=write#1:EIO")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestWriteNewFailureLeavesNothing") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	r, _ := newRoot(t)
	me := Owner{-1, -1}
	if err := r.MkdirAll("/home/bob", 0o755, me); err != nil {
		t.Fatal(err)
	}
	err := r.WriteFile("/home/bob/f", []byte("x"), 0o644, me)
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("got %v, want the injected EIO", err)
	}
	ents, _ := os.ReadDir(filepath.Join(r.Dir, "home/bob"))
	if len(ents) != 0 {
		t.Errorf("after %v left: %v", err, ents)
	}
}

// A path found missing is remembered (resolution then skips its lstat and
// those below it), until something could have made a symlink there: a
// symlink or a hard link made through the Root, any other change through
// it, or Forget after a program ran. A stale entry would resolve through
// the new link lexically, on the host: out of the root.
func TestMissingPathsForgottenWhenLinked(t *testing.T) {
	r, _ := newRoot(t)
	if err := os.MkdirAll(filepath.Join(r.Dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/real", filepath.Join(r.Dir, "etc/made-elsewhere")); err != nil {
		t.Fatal(err)
	}
	lookUp := func(p string) {
		t.Helper()
		if h, err := r.Resolve(p + "/sub/file"); err != nil || h != filepath.Join(r.Dir, p, "sub/file") {
			t.Fatalf("Resolve(%s/sub/file) = %s, %v; want the lexical path below the missing %s", p, h, err, p)
		}
		if !r.knownAbsent(strings.TrimPrefix(p, "/")) {
			t.Fatalf("%s not remembered as missing", p)
		}
	}
	want := func(p, target string) {
		t.Helper()
		h, err := r.Resolve(p + "/sub/file")
		if err != nil || h != filepath.Join(r.Dir, target, "sub/file") {
			t.Errorf("Resolve(%s/sub/file) = %s, %v; want it through the new link, to /%s/sub/file", p, h, err, target)
		}
	}

	lookUp("/etc/viasymlink")
	if err := r.Symlink("/real", "/etc/viasymlink"); err != nil {
		t.Fatal(err)
	}
	want("/etc/viasymlink", "real")

	lookUp("/etc/vialink")
	if err := r.Link("/etc/made-elsewhere", "/etc/vialink"); err != nil {
		t.Fatal(err)
	}
	want("/etc/vialink", "real")

	lookUp("/etc/program")
	// A program in the target makes it (here: the test, behind the Root).
	if err := os.Symlink("../../outside", filepath.Join(r.Dir, "etc/program")); err != nil {
		t.Fatal(err)
	}
	r.Forget()
	if _, err := r.Resolve("/etc/program/sub/file"); !errors.Is(err, ErrEscape) {
		t.Errorf("after Forget, a link out of the root made by a program: %v, want ErrEscape", err)
	}

	lookUp("/etc/other")
	if err := r.WriteFile("/etc/unrelated", nil, 0o644, RootOwner); err != nil {
		t.Fatal(err)
	}
	if r.knownAbsent("etc/other") {
		t.Error("a change through the Root left the missing paths known")
	}

	// Within one lookup: below a missing component nothing exists, until
	// ".." climbs back to where a symlink may be.
	if err := os.Symlink("/real", filepath.Join(r.Dir, "etc/up")); err != nil {
		t.Fatal(err)
	}
	if h, err := r.Resolve("/etc/nope/deeper/../../up/file"); err != nil || h != filepath.Join(r.Dir, "real/file") {
		t.Errorf("Resolve through .. out of a missing directory = %s, %v; want /real/file", h, err)
	}
}

// A link's temporary name left by a run that died before the rename is
// replaced, not an error, for symlinks and hard links alike.
func TestLinkReplacesStaleTemporary(t *testing.T) {
	r, _ := newRoot(t)
	if err := os.WriteFile(filepath.Join(r.Dir, "etc/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, link := range map[string]func() error{
		"sym":  func() error { return r.Symlink("file", "/etc/sym") },
		"hard": func() error { return r.Link("/etc/file", "/etc/hard") },
	} {
		stale := filepath.Join(r.Dir, "etc", "."+name+".provision-link")
		if err := os.Symlink("stale", stale); err != nil {
			t.Fatal(err)
		}
		if err := link(); err != nil {
			t.Errorf("%s link over a stale temporary: %v", name, err)
		}
		if _, err := os.Lstat(stale); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the temporary is still there (%v)", name, err)
		}
		if b, err := os.ReadFile(filepath.Join(r.Dir, "etc", name)); err != nil || string(b) != "x" {
			t.Errorf("%s link reads %q, %v", name, b, err)
		}
	}
}
