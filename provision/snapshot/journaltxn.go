package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/journal"
)

// JournalDirName is where the journal backend keeps its journals: a hidden
// directory at the top of the root, on the root's own filesystem (so
// recovery finds it whatever else is mounted) and outside every path a
// module writes to. It is removed again when empty.
const JournalDirName = ".provision-journal"

// rootTimesFile keeps the root directory's times from before the journal
// directory was made in it, so an abort can put them back last.
const rootTimesFile = "root-times"

type journalTxn struct {
	root string
	j    *journal.Journal
	opts Options

	mu   sync.Mutex
	done bool
	// undone: UndoOutside rolled back already (times: the root's times it
	// read first, for Abort).
	undone bool
	times  *dirTimes
}

type dirTimes struct {
	Atime, Mtime int64
	// Root is where the tree was when the journal was made: its records
	// name paths below it. Recovery with the tree elsewhere (a rescue
	// system mounting it on /mnt) rebases them.
	Root string `json:",omitempty"`
}

func beginJournal(root string, opts Options) (*journalTxn, error) {
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return nil, fmt.Errorf("snapshot: %s: %w", root, err)
	}
	times := dirTimes{Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), Root: root}
	dir := filepath.Join(root, JournalDirName, txnID(time.Now()))
	// Made on disk now, the root's times from before it beside the
	// manifest: not lazily at the first record, which comes after the
	// chroot has bound the tree onto itself, where the manifest, open for
	// the whole run, would keep that bind busy at its unmount.
	data := appendDirTimes(nil, times)
	j, err := journal.Create(dir, journal.Options{Hook: opts.reach, Created: func(dir string) error {
		return journal.WriteNew(filepath.Join(dir, rootTimesFile), data)
	}})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	opts.logf("journal transaction on %s (journal %s): what modules write is undone on failure, but what scripts write directly is NOT undone (no snapshot on this filesystem)", root, dir)
	opts.reach(kpJournalBegun)
	return &journalTxn{root: root, j: j, opts: opts}, nil
}

func (t *journalTxn) Root() string            { return t.root }
func (t *journalTxn) Journal() rootfs.Journal { return t.j }

func (t *journalTxn) finish() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errFinished
	}
	t.done = true
	return nil
}

// Commit deletes the journal; the rename inside journal.Commit is the commit
// point.
func (t *journalTxn) Commit(ctx context.Context) error {
	if err := t.finish(); err != nil {
		return err
	}
	// What modules and scripts wrote, and the journal's last records,
	// are made durable before the commit point.
	if err := rootfs.SyncFS(t.root); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	if err := t.j.Commit(); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	os.Remove(filepath.Dir(t.j.Dir()))
	t.opts.logf("committed %s", t.root)
	t.opts.reach(kpJournalCommitted)
	return nil
}

// Abort restores every original and removes what was created.
func (t *journalTxn) Abort(ctx context.Context) error {
	if err := t.finish(); err != nil {
		return err
	}
	times := t.times
	if !t.undone {
		times, _ = readRootTimes(t.j.Dir())
		if err := t.j.Rollback(); err != nil {
			return fmt.Errorf("snapshot: abort: %w", err)
		}
	}
	cleanJournalParent(t.root, times)
	t.opts.logf("aborted: %s restored", t.root)
	t.opts.reach(kpJournalAborted)
	return nil
}

func readRootTimes(dir string) (*dirTimes, error) {
	data, err := os.ReadFile(filepath.Join(dir, rootTimesFile))
	if err != nil {
		return nil, err
	}
	var t dirTimes
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// cleanJournalParent removes the (now empty) journal parent and puts the
// root's times back as they were before it was made.
func cleanJournalParent(root string, times *dirTimes) {
	if err := os.Remove(filepath.Join(root, JournalDirName)); err != nil {
		return // not empty: another journal is still there
	}
	if times != nil {
		ts := []unix.Timespec{unix.NsecToTimespec(times.Atime), unix.NsecToTimespec(times.Mtime)}
		unix.UtimesNanoAt(unix.AT_FDCWD, root, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
}

// recoverJournalBackend rolls back the journals a crashed journal
// transaction left in root.
func recoverJournalBackend(root string) error {
	parent := filepath.Join(root, JournalDirName)
	// The journals are in the target, which may carry planted ones: the
	// directory must be a real one, and each journal is recovered only
	// when every path it names lies inside root (journal.RecoverWithin).
	if st, err := os.Lstat(parent); err == nil && !st.IsDir() {
		return fmt.Errorf("snapshot: recover: %s is not a directory (a symbolic link?): refusing it", parent)
	}
	ents, err := os.ReadDir(parent)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: recover: %w", err)
	}
	var errs []error
	var times *dirTimes
	for _, e := range ents {
		dir := filepath.Join(parent, e.Name())
		if !e.IsDir() {
			continue
		}
		from := root
		if !strings.HasSuffix(e.Name(), journal.SuffixCommitted) && !strings.HasSuffix(e.Name(), journal.SuffixDone) {
			if t, err := readRootTimes(dir); err == nil {
				if times == nil {
					times = t
				}
				if t.Root != "" && filepath.IsAbs(t.Root) {
					from = t.Root
				}
			}
		}
		// Every path, rebased from where the tree was, must lie inside
		// root, or nothing is restored (a planted journal).
		if err := journal.RecoverRebased(dir, from, root, "", nil); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: recover %s: %w", dir, err))
		}
	}
	if len(errs) == 0 {
		cleanJournalParent(root, times)
	}
	return errors.Join(errs...)
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	return writeFileRenamed(path, data, mode, true)
}

// writeFileQuick is writeFileSync without the flushes: the rename still
// makes the new content appear whole or not at all.
func writeFileQuick(path string, data []byte, mode os.FileMode) error {
	return writeFileRenamed(path, data, mode, false)
}

func writeFileRenamed(path string, data []byte, mode os.FileMode, durable bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(tmp)
			return err
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if !durable {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// UndoOutside restores every original now, while the caller still has the
// filesystems mounted where they were recorded (a /var of its own); Abort
// then only finishes.
func (t *journalTxn) UndoOutside() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.undone || t.done {
		return nil
	}
	t.undone = true
	t.times, _ = readRootTimes(t.j.Dir())
	if err := t.j.Rollback(); err != nil {
		return fmt.Errorf("snapshot: undoing the changes: %w", err)
	}
	return nil
}
