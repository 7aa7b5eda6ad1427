package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/internal/treestate"
)

func setup(t *testing.T) (tree, jdir string, before treestate.State) {
	t.Helper()
	tree = filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := treestate.Populate(tree); err != nil {
		t.Fatal(err)
	}
	before, err := treestate.Capture(tree, treestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return tree, filepath.Join(t.TempDir(), "journal.1"), before
}

func change(t *testing.T, tree string, j *Journal) {
	t.Helper()
	r, err := rootfs.New(tree)
	if err != nil {
		t.Fatal(err)
	}
	r.Journal = j
	if err := treestate.Change(r); err != nil {
		t.Fatal(err)
	}
	if err := treestate.CheckChanged(tree); err != nil {
		t.Fatal(err)
	}
}

func expectSame(t *testing.T, tree string, before treestate.State) {
	t.Helper()
	after, err := treestate.Capture(tree, treestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range treestate.Diff(before, after) {
		t.Error(d)
	}
}

func TestRollbackRestoresByteForByte(t *testing.T) {
	tree, jdir, before := setup(t)
	j, err := Create(jdir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	change(t, tree, j)
	if err := j.Rollback(); err != nil {
		t.Fatal(err)
	}
	expectSame(t, tree, before)
	if _, err := os.Lstat(jdir); !os.IsNotExist(err) {
		t.Errorf("journal left behind: %v", err)
	}
	if err := j.Preserve(filepath.Join(tree, "x")); err == nil {
		t.Error("Preserve after Rollback succeeded")
	}
}

func TestCommitKeepsChanges(t *testing.T) {
	tree, jdir, _ := setup(t)
	var steps []string
	j, err := Create(jdir, Options{Hook: func(s string) { steps = append(steps, s) }})
	if err != nil {
		t.Fatal(err)
	}
	change(t, tree, j)
	if err := j.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := treestate.CheckChanged(tree); err != nil {
		t.Error(err)
	}
	for _, p := range []string{jdir, jdir + SuffixCommitted} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	if err := j.Rollback(); err == nil {
		t.Error("Rollback after Commit succeeded")
	}
	got := strings.Join(steps, " ")
	for _, s := range []string{StepCreated, StepDataCopied, StepRecorded, StepCommitRenamed, StepCommitRemoved} {
		if !strings.Contains(got, s) {
			t.Errorf("step %s not reached: %s", s, got)
		}
	}
}

// A crash leaves the journal open; Recover (run twice, as after a crash
// during recovery) restores the tree.
func TestRecoverOpenJournal(t *testing.T) {
	tree, jdir, before := setup(t)
	j, err := Create(jdir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	change(t, tree, j)
	j.manifest.Close() // the process "dies" here
	// A torn last line (crash while appending) must be ignored.
	f, err := os.OpenFile(filepath.Join(jdir, "manifest"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":99,"path":"/nowhere","ki`)
	f.Close()
	entries, err := readManifest(jdir)
	if err != nil {
		t.Fatal(err)
	}
	// Interrupted recovery: restore half of the entries, then recover.
	for i := len(entries) - 1; i >= len(entries)/2; i-- {
		if err := restore(jdir, entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := RecoverAll(filepath.Dir(jdir), "journal.", nil); err != nil {
		t.Fatal(err)
	}
	expectSame(t, tree, before)
	if err := RecoverAll(filepath.Dir(jdir), "journal.", nil); err != nil {
		t.Fatal(err)
	}
}

func TestRecoverCommittedJournalKeepsChanges(t *testing.T) {
	tree, jdir, _ := setup(t)
	j, err := Create(jdir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	change(t, tree, j)
	j.manifest.Close()
	if err := os.Rename(jdir, jdir+SuffixCommitted); err != nil {
		t.Fatal(err)
	}
	if err := Recover(jdir+SuffixCommitted, nil); err != nil {
		t.Fatal(err)
	}
	if err := treestate.CheckChanged(tree); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(jdir + SuffixCommitted); !os.IsNotExist(err) {
		t.Error("committed journal not removed")
	}
}

func TestSkipAndRefuse(t *testing.T) {
	tree, jdir, _ := setup(t)
	j, err := Create(jdir, Options{Skip: func(p string) bool { return strings.HasSuffix(p, "skipped") }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(tree, "skipped"), filepath.Join(jdir, "manifest"), "relative"} {
		j.Preserve(p)
	}
	if err := j.Preserve(filepath.Join(jdir, "data", "x")); err == nil {
		t.Error("journal accepted a path inside itself")
	}
	if err := j.Preserve("relative/path"); err == nil {
		t.Error("relative path accepted")
	}
	fifo := filepath.Join(tree, "fifo")
	if err := mkfifo(fifo); err == nil {
		if err := j.Preserve(fifo); err == nil {
			t.Error("special file accepted")
		}
	}
	entries, err := readManifest(jdir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Path, "skipped") {
			t.Errorf("skipped path recorded: %+v", e)
		}
	}
	j.Rollback()
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"{bad\n", "manifest:1:"},
		{`{"seq":1,"path":"rel","kind":"file"}` + "\n", `bad path "rel"`},
		{`{"seq":1,"path":"/a/../b","kind":"file"}` + "\n", "bad path"},
		{`{"seq":1,"path":"/a","kind":"dev"}` + "\n", `unknown kind "dev"`},
		{`{"seq":1,"path":"/a","kind":"dir"}` + "\n" + `{"seq":0,"path":"/a","kind":"dir"}` + "\n", "manifest:2: bad entry 0"},
		{`{"seq":1,"path":"/a","kind":"dir","mode":99999}` + "\n", "bad entry"},
	} {
		_, err := parseManifest(strings.NewReader(tc.in), "/j")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(`{"seq":1,"path":"/etc/x","kind":"file","mode":420,"uid":0,"gid":0,"mtime":5}` + "\n"))
	f.Add([]byte(`{"seq":2,"path":"/etc","kind":"times","xattrs":{"user.a":"eA=="}}` + "\n{"))
	f.Add([]byte(`{"seq":3,"path":"/etc/passwd","kind":"file","mode":420,"uid":0,"gid":0,"inline":true,"data":"cm9vdAo="}` + "\n" +
		`{"seq":4,"path":"/etc/group","kind":"dir","inline":true,"data":"eA=="}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseManifest(strings.NewReader(string(data)), "/j")
		if err != nil {
			return
		}
		for _, e := range entries {
			if e.check() != nil {
				t.Fatalf("accepted a bad entry %+v", e)
			}
		}
	})
}

// A lazy journal is made on disk by its first record, and a rollback then
// restores as an eager one does; one that never recorded anything leaves
// nothing, whether committed or rolled back.
func TestLazyJournal(t *testing.T) {
	tree, jdir, before := setup(t)
	j, err := Create(jdir, Options{Lazy: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(jdir); !os.IsNotExist(err) {
		t.Fatalf("a lazy journal made on Create: %v", err)
	}
	change(t, tree, j)
	if _, err := os.Stat(filepath.Join(jdir, "manifest")); err != nil {
		t.Fatalf("no manifest after the first change: %v", err)
	}
	if err := j.Rollback(); err != nil {
		t.Fatal(err)
	}
	expectSame(t, tree, before)

	for _, finish := range []func(*Journal) error{(*Journal).Commit, (*Journal).Rollback} {
		dir := filepath.Join(t.TempDir(), "journal.2")
		j, err := Create(dir, Options{Lazy: true, Skip: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Preserve(filepath.Join(tree, "etc")); err != nil {
			t.Fatal(err)
		}
		if err := finish(j); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("a journal that recorded nothing left %s: %v", dir, err)
		}
	}
	if _, err := Create(jdir+"x", Options{Lazy: true}); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(jdir+"y", 0o700)
	if _, err := Create(jdir+"y", Options{Lazy: true}); err == nil {
		t.Error("a lazy journal over an existing directory")
	}
}
