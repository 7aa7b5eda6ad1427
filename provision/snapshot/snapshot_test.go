package snapshot

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/internal/treestate"
)

func TestKillPointsUniqueAndEnough(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range KillPoints() {
		if seen[k] {
			t.Errorf("duplicate kill point %s", k)
		}
		seen[k] = true
	}
	if len(seen) < 20 {
		t.Errorf("%d kill points, want at least 20", len(seen))
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if err := treestate.Populate(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := treestate.Capture(dir, treestate.Options{})
	var log bytes.Buffer
	txn, err := Begin(context.Background(), dir, Options{DryRun: true, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if txn.Root() != dir {
		t.Errorf("Root %s, want %s", txn.Root(), dir)
	}
	if err := txn.Journal().Preserve(filepath.Join(dir, "etc/hostname")); err != nil {
		t.Fatal(err)
	}
	if err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	after, _ := treestate.Capture(dir, treestate.Options{})
	for _, d := range treestate.Diff(before, after) {
		t.Error(d)
	}
	for _, want := range []string{"dry run: would begin a journal transaction", "would keep the original of " + dir + "/etc/hostname", "would delete the journal"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

// The journal backend on a plain directory: Abort restores byte for byte
// (the root's own times too), Commit keeps everything and leaves no journal.
func TestJournalBackendPlainDir(t *testing.T) {
	testJournalBackend(t, t.TempDir())
}

func testJournalBackend(t *testing.T, dir string) {
	ctx := context.Background()
	if err := treestate.Populate(dir); err != nil {
		t.Fatal(err)
	}
	skipLostFound := treestate.Options{Skip: func(rel string) bool { return rel == "lost+found" }}
	before, err := treestate.Capture(dir, skipLostFound)
	if err != nil {
		t.Fatal(err)
	}
	apply := func() Txn { return changeInJournalTxn(t, dir) }
	txn := apply()
	if err := txn.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := treestate.Capture(dir, skipLostFound)
	for _, d := range treestate.Diff(before, after) {
		t.Error("after abort: " + d)
	}
	if err := txn.Commit(ctx); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	txn = apply()
	if err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := treestate.CheckChanged(dir); err != nil {
		t.Error(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, JournalDirName)); !os.IsNotExist(err) {
		t.Errorf("journal directory left behind: %v", err)
	}
	if err := Recover(ctx, dir); err != nil {
		t.Fatal(err)
	}
	if err := treestate.CheckChanged(dir); err != nil {
		t.Error("Recover after commit undid it: ", err)
	}
}

// A journal-backend run that crashed with the tree at one path is undone
// by a recovery with the tree at another (a rescue system mounting it on
// /mnt): the records are rebased onto where the tree is now.
func TestJournalRecoveryWhereverTheTreeIs(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	first, second := filepath.Join(base, "sysroot"), filepath.Join(base, "mnt")
	if err := os.Mkdir(first, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := treestate.Populate(first); err != nil {
		t.Fatal(err)
	}
	before, err := treestate.Capture(first, treestate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	changeInJournalTxn(t, first)
	// The crash: no commit, no abort. The tree moves.
	if err := os.Rename(first, second); err != nil {
		t.Fatal(err)
	}
	if err := Recover(ctx, second); err != nil {
		t.Fatal(err)
	}
	after, _ := treestate.Capture(second, treestate.Options{})
	for _, d := range treestate.Diff(before, after) {
		t.Error("after recovery elsewhere: " + d)
	}
	if _, err := os.Lstat(filepath.Join(second, JournalDirName)); err == nil {
		t.Error("the journal is left")
	}
}

// changeInJournalTxn begins a transaction on dir, which must be the
// journal backend's, and makes treestate's changes in it.
func changeInJournalTxn(t *testing.T, dir string) Txn {
	t.Helper()
	txn, err := Begin(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := txn.(*journalTxn); !ok {
		t.Fatalf("backend %T, want journal", txn)
	}
	r, err := rootfs.New(txn.Root())
	if err != nil {
		t.Fatal(err)
	}
	r.Journal = txn.Journal()
	if err := treestate.Change(r); err != nil {
		t.Fatal(err)
	}
	return txn
}
