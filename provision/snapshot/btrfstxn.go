package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
	"github.com/provision-dev/provision/provision/snapshot/journal"
	"github.com/provision-dev/provision/sources/blockdev"
)

// StateDirName is the directory in the filesystem's top level (subvolid 5)
// that holds one directory per open btrfs transaction: its stateXattr
// (what was created) and journal/ (originals of writes outside the
// snapshot).
// Its presence is the in-progress marker recovery looks for; snapper
// snapshots additionally carry userdata transactional-update-in-progress=yes until the
// transaction is finished, so `snapper list` shows them for what they are.
const StateDirName = ".provision"

// QuarantineDirName, in the top level, keeps the journals recovery would
// not replay (see recoverJournals), for whoever wants to look.
const QuarantineDirName = ".provision-quarantine"

// stateXattr, on a transaction's state directory, is its btrfsState as
// JSON. stateFile held it before (recovery still reads one a crashed older
// run left).
const (
	stateXattr = "user.provision.state"
	stateFile  = "state.json"
)

// selinuxXattr holds a file's SELinux context.
const selinuxXattr = "security.selinux"

// btrfsState is what recovery needs to know about a transaction.
type btrfsState struct {
	Snapshot   string    `json:"snapshot"`              // path from the top level
	SnapperDir string    `json:"snapper_dir,omitempty"` // .snapshots/N, for the snapper layout
	Num        uint64    `json:"num,omitempty"`
	Root       string    `json:"root"` // the subvolume snapshotted
	OldDefault uint64    `json:"old_default"`
	Created    time.Time `json:"created"`
	// Top is where the run mounted the top level: the journal records
	// paths below it (topPath), which recovery rebases onto its own.
	Top string `json:"top,omitempty"`
	// Outside lists the subvolumes mounted outside the root that were
	// taken into the transaction (see outside.go).
	Outside []outsideSubvol `json:"outside,omitempty"`
}

type btrfsTxn struct {
	opts     Options
	root     string // the old root as the caller mounted it
	top      string // private mount of subvolid=5
	st       btrfsState
	stateDir string
	oldRO    bool
	dev      string // the filesystem's device, as mountinfo names it
	snapID   uint64
	j        *journal.Journal
	jUndone  bool // UndoOutside rolled the journal back already

	devMu sync.Mutex
	devs  map[uint64]bool // st_dev of the root snapshot and the outside ones

	mu        sync.Mutex
	done      bool
	committed bool // the default subvolume was switched
}

// snapperSnapshot splits a path from the top level of the form
// PARENT/.snapshots/N/snapshot, as snapper lays its snapshots out, into
// PARENT ("" for the top level) and N's digits; ok is false for any other
// path. (A regular expression did this; compiling one costs an emulated
// first boot milliseconds.)
func snapperSnapshot(fsPath string) (parent, num string, ok bool) {
	rest, ok := strings.CutSuffix(fsPath, "/snapshot")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, "/.snapshots/")
	if i < 0 {
		return "", "", false
	}
	num = rest[i+len("/.snapshots/"):]
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return "", "", false
	}
	return rest[:i], num, true
}

// locate finds the device and the path from the top level of the subvolume
// mounted at root.
func locate(root string) (dev, fsPath string, err error) {
	mounts, err := btrfs.ReadMountinfo()
	if err != nil {
		return "", "", fmt.Errorf("snapshot: %w", err)
	}
	m, rel, ok := btrfs.MountOf(mounts, root)
	if !ok || m.FSType != "btrfs" {
		return "", "", fmt.Errorf("snapshot: %s: no btrfs mount found in mountinfo", root)
	}
	return m.Source, path.Clean(path.Join("/", m.Root, rel)), nil
}

func runDir() string {
	if st, err := os.Stat("/run"); err == nil && st.IsDir() && unix.Access("/run", unix.W_OK) == nil {
		return "/run"
	}
	return os.TempDir()
}

const topPrefix = "provision-top-"

// mountTop mounts the filesystem's top level privately: the snapshots,
// snapper's directories and our state live there, outside the root.
func mountTop(dev string) (string, error) {
	dir, err := os.MkdirTemp(runDir(), topPrefix)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	if err := fault.Mount(dev, dir, "btrfs", unix.MS_NOATIME, "subvolid=5"); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("snapshot: mount %s subvolid=5 on %s: %w", dev, dir, blockdev.ReadOnlyError(dev, err))
	}
	return dir, nil
}

// removeStaleTopDirs removes empty mount point directories that a killed
// run left in the run directory. Only unmounted ones older than a minute
// go: a concurrent Begin may be between creating its directory and
// mounting it.
func removeStaleTopDirs() {
	dir := runDir()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	mounts, err := btrfs.ReadMountinfo()
	if err != nil {
		return
	}
	mounted := map[string]bool{}
	for _, m := range mounts {
		mounted[m.MountPoint] = true
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), topPrefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if info, err := e.Info(); err == nil && !mounted[p] && time.Since(info.ModTime()) > time.Minute {
			os.Remove(p) // fails, harmlessly, when not empty
		}
	}
}

func unmountTop(dir string) error {
	err := fault.Unmount(dir, 0)
	if err != nil {
		err = fault.Unmount(dir, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("snapshot: unmount %s: %w", dir, err)
	}
	return os.Remove(dir)
}

func beginBtrfs(ctx context.Context, root string, opts Options) (_ *btrfsTxn, err error) {
	dev, fsPath, err := locate(root)
	if err != nil {
		return nil, err
	}
	rootID, err := btrfs.SubvolID(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	oldRO, err := btrfs.ReadOnly(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	top, err := mountTop(dev)
	if err != nil {
		return nil, err
	}
	t := &btrfsTxn{opts: opts, root: root, top: top, oldRO: oldRO, dev: dev, devs: map[uint64]bool{}}
	defer func() {
		if err != nil {
			t.cleanup(ctx)
		}
	}()
	opts.reach(kpBtrfsTopMounted)
	if id, err := btrfs.SubvolID(t.abs(fsPath)); err != nil || id != rootID {
		return nil, fmt.Errorf("snapshot: root subvolume %d not found at %s in the top level of %s (found %d, %v)", rootID, fsPath, dev, id, err)
	}
	oldDefault, err := btrfs.Default(top)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	now := time.Now().UTC()
	t.st = btrfsState{Root: fsPath, OldDefault: oldDefault, Created: now, Top: top}
	if parent, _, ok := snapperSnapshot(fsPath); ok && isDir(t.abs(parent+"/.snapshots")) {
		num, err := nextSnapperNumber(t.abs(parent + "/.snapshots"))
		if err != nil {
			return nil, err
		}
		t.st.Num = num
		t.st.SnapperDir = path.Join(parent, ".snapshots", strconv.FormatUint(num, 10))
		t.st.Snapshot = path.Join(t.st.SnapperDir, "snapshot")
	} else {
		parent := path.Dir(fsPath)
		name := "@provision-" + now.Format("20060102T150405Z")
		for i := 2; exists(t.abs(path.Join(parent, name))); i++ {
			name = fmt.Sprintf("@provision-%s-%d", now.Format("20060102T150405Z"), i)
		}
		t.st.Snapshot = path.Join(parent, name)
	}

	// The state directory comes first: whatever exists after it can be
	// found and judged by recovery.
	if err := os.MkdirAll(t.abs(StateDirName), 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	t.stateDir = t.abs(path.Join(StateDirName, txnID(now)))
	if err := os.Mkdir(t.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// Lazy: most runs write only into the snapshot (and the snapshots of
	// /var and /home), which need no journal.
	t.j, err = journal.Create(filepath.Join(t.stateDir, "journal"), journal.Options{Hook: opts.reach, Skip: t.inSnapshot, MapPath: t.topPath, Lazy: true, CommittedElsewhere: true})
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := t.writeState(); err != nil {
		return nil, err
	}
	opts.reach(kpBtrfsStateWritten)

	if t.opts.Plugins != nil && t.st.SnapperDir != "" {
		// Snapper's create-snapshot-pre plugins run before the snapshot's
		// commit, and what they make durable (an fsync) could reach the
		// disk without the intent: commit it first.
		if err := rootfs.SyncFS(t.top); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
	}
	if t.st.SnapperDir != "" {
		if err := os.Mkdir(t.abs(t.st.SnapperDir), 0o755); err != nil {
			t.st.SnapperDir = "" // not ours: cleanup must not touch it
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		opts.reach(kpBtrfsSnapperDir)
		// Snapper emits it with the directory made, no subvolume yet.
		if err := t.plugins(ctx, EventCreatePre); err != nil {
			return nil, err
		}
		// As transactional-update's snapshots: cleanup by number, the
		// in-progress userdata until the commit clears it, readable by
		// all (snapper writes info.xml 0644). Written before the snapshot,
		// not after as snapper does: it then joins the filesystem
		// transaction the directory's creation opened, which the
		// snapshot's commit makes durable, instead of opening one of its
		// own after that commit (a cost of its own in a boot under
		// emulation). Not flushed on its own: until the commit point only
		// recovery reads it, and deletes the directory.
		info := snapperInfo{
			Type: "single", Num: t.st.Num, Date: now,
			Description: opts.description(t.baseNum(fsPath)), Cleanup: "number",
			Userdata: []kv{{inProgressKey, "yes"}},
		}
		if err := os.WriteFile(t.abs(path.Join(t.st.SnapperDir, "info.xml")), info.marshal(), 0o644); err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		opts.reach(kpBtrfsInfoWritten)
	}
	// What is nested in the root is listed before the snapshot exists: a
	// root at the top level would otherwise list the snapshot itself.
	nested, err := planNested(root, rootID)
	if err != nil {
		return nil, err
	}
	snap := t.abs(t.st.Snapshot)
	if err := btrfs.Snapshot(root, filepath.Dir(snap), filepath.Base(snap)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			t.st.Snapshot = "" // not ours: cleanup must not delete it
		}
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	opts.reach(kpBtrfsSnapshot)
	if t.snapID, err = btrfs.SubvolID(snap); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Stat(snap, &st); err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	t.devs[st.Dev] = true
	if t.st.SnapperDir != "" {
		// The target's own plugins (transactional-update's 50-etc,
		// sdbootutil's) act on the new snapshot now, as after
		// `snapper create`; what nested subvolume they did not carry
		// over, carryNested does.
		if err := t.plugins(ctx, GrubRefresh, EventCreate, EventCreatePost); err != nil {
			return nil, err
		}
	}
	if err := t.carryNested(root, snap, nested); err != nil {
		return nil, err
	}
	opts.logf("btrfs transaction: snapshot %s (id %d) of %s (id %d), default %d", t.st.Snapshot, t.snapID, fsPath, rootID, oldDefault)
	return t, nil
}

// writeState records what the transaction is about to create, before it
// creates it, as an extended attribute of its state directory. An xattr is
// btrfs metadata: it joins the running filesystem transaction, and the
// snapshot ioctl that comes next commits that transaction (or a later one:
// btrfs commits them in order). So the intent is durable no later than
// what it describes, without a flush of its own. A file would not do:
// btrfs writes a file's data back on its own schedule, not with the commit
// of its name, so a state file needed two flushes every time.
func (t *btrfsTxn) writeState() error {
	if err := unix.Setxattr(t.stateDir, stateXattr, appendBtrfsState(nil, &t.st), 0); err != nil {
		return fmt.Errorf("snapshot: recording the transaction on %s: %w", t.stateDir, err)
	}
	return nil
}

// readState reads a transaction's state: its xattr, or the state file an
// older release wrote. Neither (fs.ErrNotExist): Begin died before it
// recorded anything.
func readState(stateDir string) (btrfsState, error) {
	var st btrfsState
	data, err := rootfs.GetXattr(stateDir, stateXattr)
	switch {
	case errors.Is(err, unix.ENODATA):
		if data, err = os.ReadFile(filepath.Join(stateDir, stateFile)); err != nil {
			return st, err
		}
	case err != nil:
		return st, &os.PathError{Op: "getxattr " + stateXattr, Path: stateDir, Err: err}
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("the transaction's state: %w", err)
	}
	return st, nil
}

// baseNum is the snapper number of the snapshot at fsPath, 0 if it is none.
func (t *btrfsTxn) baseNum(fsPath string) uint64 {
	if _, num, ok := snapperSnapshot(fsPath); ok {
		n, _ := strconv.ParseUint(num, 10, 64)
		return n
	}
	return 0
}

func (t *btrfsTxn) abs(fsPath string) string { return filepath.Join(t.top, filepath.FromSlash(fsPath)) }

func (t *btrfsTxn) Root() string            { return t.abs(t.st.Snapshot) }
func (t *btrfsTxn) Journal() rootfs.Journal { return t.j }

// inSnapshot reports whether p lies in one of the transaction's snapshot
// subvolumes (any mount of them): such paths need no journal, the snapshot
// goes as a whole. btrfs gives each subvolume its own st_dev, so the nearest
// existing ancestor tells.
func (t *btrfsTxn) inSnapshot(p string) bool {
	for {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == nil {
			t.devMu.Lock()
			defer t.devMu.Unlock()
			return t.devs[st.Dev]
		}
		parent := filepath.Dir(p)
		if parent == p {
			return false
		}
		p = parent
	}
}

// Commit makes the snapshot the default subvolume.
func (t *btrfsTxn) Commit(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errFinished
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	snap := t.Root()
	if err := rootfs.SyncFS(snap); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	t.opts.reach(kpBtrfsSynced)
	if t.oldRO {
		if err := t.plugins(ctx, EventReadOnlyPre); err != nil {
			return err
		}
		if err := btrfs.SetReadOnly(snap, true); err != nil {
			return fmt.Errorf("snapshot: commit: %w", err)
		}
		t.opts.reach(kpBtrfsReadOnly)
		if err := t.plugins(ctx, GrubRefresh, EventReadOnlyPost); err != nil {
			return err
		}
	}
	if err := t.plugins(ctx, EventDefaultPre); err != nil {
		return err
	}
	// The commit point.
	if err := btrfs.SetDefault(t.top, t.snapID); err != nil {
		return fmt.Errorf("snapshot: commit: %w", err)
	}
	t.committed, t.done = true, true
	t.opts.logf("committed: default subvolume is now %s (id %d)", t.st.Snapshot, t.snapID)
	t.opts.reach(kpBtrfsDefaultSet)
	// sdbootutil's plugin makes the new snapshot's boot entry the default
	// here on systemd-boot targets.
	t.pluginsAfterCommit(ctx, EventDefault, EventDefaultPost)
	// Past the commit point failures are only bookkeeping: Recover finishes
	// it, so they are logged, not returned (the new root is the system now).
	if err := t.finishCommitted(ctx); err != nil {
		t.opts.logf("warning: after commit: %v (the next Recover finishes it)", err)
	}
	return nil
}

func (t *btrfsTxn) finishCommitted(ctx context.Context) error {
	var errs []error
	if len(t.st.Outside) > 0 {
		if err := swapOutside(t.top, t.st.Outside, t.opts.reach); err != nil {
			// The state stays: recovery finishes the swap.
			t.opts.logf("warning: swapping in the new /var, /home...: %v", err)
			unmountTop(t.top)
			return err
		}
	}
	if t.st.SnapperDir != "" {
		t.pluginsAfterCommit(ctx, EventModifyPre)
		// Unflushed, like the state's removal after it: btrfs commits
		// its transactions in order, so a lost rewrite means a state
		// still there, which Recover finishes (it drops the marker).
		if err := dropSnapperMarker(t.abs(t.st.SnapperDir), false); err != nil {
			errs = append(errs, err)
		}
		t.opts.reach(kpBtrfsMarkerRemoved)
		t.pluginsAfterCommit(ctx, GrubRefresh, EventModify, EventModifyPost)
	}
	if err := t.j.Commit(); err != nil {
		errs = append(errs, err)
	}
	t.opts.reach(kpBtrfsJournalRemoved)
	// Unflushed: should the removal be lost, the state names a snapshot
	// that is the default, which Recover finishes as committed.
	if err := removeStateQuick(t.stateDir); err != nil {
		errs = append(errs, err)
	}
	t.opts.reach(kpBtrfsStateRemoved)
	if err := unmountTop(t.top); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Abort throws the snapshot away and undoes the journal.
func (t *btrfsTxn) Abort(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return errFinished
	}
	t.done = true
	return t.cleanup(ctx)
}

// cleanup undoes everything Begin did, in reverse. It runs for Abort and for
// a Begin that failed half-way.
func (t *btrfsTxn) cleanup(ctx context.Context) error {
	var errs []error
	snap := ""
	if t.st.Snapshot != "" {
		snap = t.Root()
	}
	if t.snapID != 0 {
		// The kernel refuses to delete the default subvolume: if a failed
		// commit got as far as switching it, switch it back first.
		if def, err := btrfs.Default(t.top); err == nil && def == t.snapID {
			if err := btrfs.SetDefault(t.top, t.st.OldDefault); err != nil {
				errs = append(errs, err)
			}
			t.opts.reach(kpBtrfsDefaultReset)
		}
	}
	if t.j != nil && !t.jUndone {
		if err := t.j.Rollback(); err != nil {
			errs = append(errs, err)
		}
		t.opts.reach(kpBtrfsJournalUndone)
	}
	if err := dropOutside(t.top, t.st.Outside, t.opts.reach); err != nil {
		errs = append(errs, err)
	}
	if snap != "" && isSubvol(snap) {
		t.pluginsAfterCommit(ctx, EventDeletePre)
		if err := btrfs.DeleteTree(filepath.Dir(snap), filepath.Base(snap)); err != nil {
			errs = append(errs, err)
		} else {
			t.opts.reach(kpBtrfsSnapDeleted)
			t.pluginsAfterCommit(ctx, GrubRefresh, EventDelete, EventDeletePost)
		}
	}
	if t.st.SnapperDir != "" {
		if err := removeSnapperDir(t.abs(t.st.SnapperDir)); err != nil {
			errs = append(errs, err)
		}
		t.opts.reach(kpBtrfsSnapperRemoved)
	}
	if t.stateDir != "" && len(errs) > 0 {
		// Something could not be undone (a subvolume the kernel would not
		// delete): the state stays, so the next run's Recover finishes the
		// abort instead of leaving orphans no one knows about.
		t.opts.logf("abort incomplete: keeping %s for the next run's recovery", t.stateDir)
	} else if t.stateDir != "" {
		// No fsync here: an abort whose last steps are lost to a crash is
		// finished by Recover (the state names a snapshot that is gone, or
		// one to delete), and syncing would make the abort wait for btrfs
		// to commit the deleted snapshot, a cost that grows with the root.
		if err := removeStateQuick(t.stateDir); err != nil {
			errs = append(errs, err)
		}
		t.opts.reach(kpBtrfsAbortState)
	}
	if err := unmountTop(t.top); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("snapshot: abort: %w", err)
	}
	t.opts.logf("aborted: snapshot %s deleted, default unchanged", t.st.Snapshot)
	return nil
}

// recoverBtrfs judges every transaction left in the top level's state dir:
// committed (its snapshot is the default) ones are finished, others undone.
func recoverBtrfs(ctx context.Context, root string, log io.Writer) error {
	removeStaleTopDirs()
	// Most boots find nothing to recover: that is read without mounting
	// the top level. Should the search fail, the mount below decides.
	if has, err := btrfs.TopLevelHas(root, StateDirName); err == nil && !has {
		return nil
	}
	dev, _, err := locate(root)
	if err != nil {
		return err
	}
	top, err := mountTop(dev)
	if err != nil {
		return err
	}
	defer unmountTop(top)
	ents, err := os.ReadDir(filepath.Join(top, StateDirName))
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("snapshot: recover: %w", err)
	}
	def, err := btrfs.Default(top)
	if err != nil {
		return fmt.Errorf("snapshot: recover: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() {
			continue
		}
		if err := recoverOne(top, filepath.Join(top, StateDirName, e.Name()), def, log); err != nil {
			errs = append(errs, fmt.Errorf("snapshot: recover %s: %w", e.Name(), err))
		}
	}
	if len(errs) == 0 {
		os.Remove(filepath.Join(top, StateDirName))
	}
	return errors.Join(errs...)
}

func recoverOne(top, stateDir string, def uint64, log io.Writer) error {
	st, err := readState(stateDir)
	if isNotExist(err) {
		// Begin died before recording a snapshot: nothing else exists.
		if err := recoverJournals(top, stateDir, "", "", log); err != nil {
			return err
		}
		return removeState(stateDir)
	}
	if err != nil {
		return err
	}
	if st.Snapshot == "" || !path.IsAbs(st.Snapshot) || path.Clean(st.Snapshot) != st.Snapshot || st.Snapshot == "/" {
		return fmt.Errorf("the transaction's state: bad snapshot path %q", st.Snapshot)
	}
	abs := func(p string) string { return filepath.Join(top, filepath.FromSlash(p)) }
	for _, o := range st.Outside {
		for _, p := range []string{o.Orig, o.Snap, o.Trash} {
			if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
				return fmt.Errorf("the transaction's state: bad subvolume path %q", p)
			}
		}
	}
	snap := abs(st.Snapshot)
	committed := false
	if isSubvol(snap) {
		id, err := btrfs.SubvolID(snap)
		if err != nil {
			return err
		}
		committed = id == def
	}
	if !committed && swapStarted(top, st.Outside) {
		// The renames only start after the commit point: the default
		// was changed since (by hand, or lost with the power before it
		// reached the disk while the renames did not — btrfs commits in
		// order, so that should not happen). /var and friends already
		// hold the new data: finish the swap, keep the root snapshot.
		if err := swapOutside(top, st.Outside, func(string) {}); err != nil {
			return err
		}
		if err := discardJournals(stateDir); err != nil {
			return err
		}
		return removeState(stateDir)
	}
	if committed {
		if err := swapOutside(top, st.Outside, func(string) {}); err != nil {
			return err
		}
		if st.SnapperDir != "" {
			if err := dropSnapperMarker(abs(st.SnapperDir), true); err != nil {
				return err
			}
		}
		if err := discardJournals(stateDir); err != nil {
			return err
		}
		return removeState(stateDir)
	}
	if err := recoverJournals(top, stateDir, st.Top, st.Snapshot, log); err != nil {
		return err
	}
	if err := dropOutside(top, st.Outside, func(string) {}); err != nil {
		return err
	}
	if isSubvol(snap) {
		// Nested subvolumes (the carried /etc, what a snapper plugin made
		// in it) first: the kernel refuses to delete a parent of others.
		if err := btrfs.DeleteTree(filepath.Dir(snap), filepath.Base(snap)); err != nil {
			return err
		}
	}
	if st.SnapperDir != "" {
		if err := removeSnapperDir(abs(st.SnapperDir)); err != nil {
			return err
		}
	}
	return removeState(stateDir)
}

func discardJournals(stateDir string) error {
	ents, err := os.ReadDir(stateDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := journal.Discard(filepath.Join(stateDir, e.Name()), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeStateQuick is removeState without the fsyncs: for aborts, where a
// lost removal only means Recover does it again.
func removeStateQuick(dir string) error {
	gone := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".removing")
	if err := os.Rename(dir, gone); err != nil && !isNotExist(err) {
		return err
	}
	if err := os.RemoveAll(gone); err != nil {
		return err
	}
	os.Remove(filepath.Dir(dir))
	return nil
}

// removeState deletes a transaction's state directory: renamed to a name
// recovery ignores first, so a crash half-way through the deletion cannot
// leave a state.json without its journal.
func removeState(dir string) error {
	gone := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".removing")
	if err := os.Rename(dir, gone); err != nil && !isNotExist(err) {
		return err
	}
	if err := os.RemoveAll(gone); err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	d, err := os.Open(parent)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	// The last transaction takes the state directory with it.
	if os.Remove(parent) == nil {
		syncParent(parent)
	}
	return err
}

func syncParent(p string) {
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
}

// nextSnapperNumber is snapper's rule: one more than the highest number
// present in .snapshots.
func nextSnapperNumber(dir string) (uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && e.IsDir() {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	if len(nums) == 0 {
		return 1, nil
	}
	return nums[len(nums)-1] + 1, nil
}

// dropSnapperMarker rewrites info.xml without the in-progress userdata,
// flushed when durable is set.
func dropSnapperMarker(dir string, durable bool) error {
	p := filepath.Join(dir, "info.xml")
	data, err := os.ReadFile(p)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	info, err := parseSnapperInfo(p, data)
	if err != nil {
		return err
	}
	if !info.inProgress() {
		return nil
	}
	info.drop(inProgressKey)
	info.drop(legacyInProgressKey)
	// The rewrite is a new inode: keep the SELinux label the run gave it.
	label, lerr := rootfs.GetXattr(p, selinuxXattr)
	write := writeFileSync
	if !durable {
		write = writeFileQuick
	}
	if err := write(p, info.marshal(), 0o644); err != nil {
		return err
	}
	if lerr == nil && len(label) > 0 {
		return unix.Lsetxattr(p, selinuxXattr, label, 0)
	}
	return nil
}

// removeSnapperDir removes a snapper snapshot directory we created: its
// info.xml and the directory, never anything else.
func removeSnapperDir(dir string) error {
	p := filepath.Join(dir, "info.xml")
	// Missing or empty is a crash before Begin's write of it reached the
	// disk (it is made durable by the commit's syncfs, not on its own);
	// snapper never leaves either.
	if data, err := os.ReadFile(p); err == nil && len(data) > 0 {
		info, err := parseSnapperInfo(p, data)
		if err != nil {
			return err
		}
		if !info.inProgress() {
			return fmt.Errorf("%s: not an in-progress provision snapshot, left alone", p)
		}
	}
	for _, name := range []string{"info.xml", "info.xml.tmp"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !isNotExist(err) {
			return err
		}
	}
	if err := os.Remove(dir); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isSubvol(p string) bool {
	ok, err := btrfs.IsSubvolume(p)
	return err == nil && ok
}

// SnapperInfo describes a transaction in snapper's layout; Numbered is
// implemented by transactions that have one.
type SnapperInfo struct {
	Base, Num uint64 // the snapshot number modified and the new one
	// Top is the host path of the filesystem's top level (mounted
	// privately for the transaction's lifetime), TopPath the new
	// snapshot's path from it.
	Top, TopPath string
}

// Numbered is implemented by a btrfs transaction in snapper's layout.
type Numbered interface {
	Snapper() (SnapperInfo, bool)
}

var _ Numbered = (*btrfsTxn)(nil)

// Snapper implements Numbered.
func (t *btrfsTxn) Snapper() (SnapperInfo, bool) {
	if t.st.SnapperDir == "" {
		return SnapperInfo{}, false
	}
	return SnapperInfo{Base: t.baseNum(t.st.Root), Num: t.st.Num, Top: t.top, TopPath: t.st.Snapshot}, true
}

// UndoOutside rolls back the journal of writes made outside the snapshots
// (a /var on a filesystem of its own) now, while the caller still has those
// filesystems mounted where the journal recorded them; Abort then skips it.
func (t *btrfsTxn) UndoOutside() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done || t.j == nil || t.jUndone {
		return nil
	}
	t.jUndone = true
	if err := t.j.Rollback(); err != nil {
		return fmt.Errorf("snapshot: undoing writes outside the snapshot: %w", err)
	}
	t.opts.reach(kpBtrfsJournalUndone)
	return nil
}

// LabelSnapperFiles gives the snapshot's snapper directory and info.xml
// the labels label computes for them as the booted system sees them
// (/.snapshots/N, /.snapshots/N/info.xml); the commit's rewrite of
// info.xml keeps the label.
func (t *btrfsTxn) LabelSnapperFiles(label func(host, target string) error) error {
	if t.st.SnapperDir == "" {
		return nil
	}
	dir := "/.snapshots/" + strconv.FormatUint(t.st.Num, 10)
	if err := label(t.abs(t.st.SnapperDir), dir); err != nil {
		return err
	}
	return label(t.abs(path.Join(t.st.SnapperDir, "info.xml")), dir+"/info.xml")
}

// topPath names host, a path on a mount of this filesystem (the original
// /var the chroot mounted in the tree, or one the caller mounted), by its
// place below the transaction's top-level mount: the same file, under a
// name recovery can rebase onto the top level it mounts itself after the
// mounts of a crashed run are gone. Paths on other filesystems keep their
// name, which recovery will not trust.
func (t *btrfsTxn) topPath(host string) string {
	mounts, err := btrfs.ReadMountinfo()
	if err != nil {
		return host
	}
	m, rel, ok := btrfs.MountOf(mounts, host)
	if !ok || m.FSType != "btrfs" || m.Source != t.dev {
		return host
	}
	return filepath.Join(t.top, filepath.FromSlash(m.Root), rel)
}

// recoverJournals rolls back the undo journals of a crashed transaction —
// what it wrote outside its snapshots (a /var that could not be
// snapshotted). Their paths were recorded below that run's top-level mount
// (topPath), which died with it: they are rebased onto this recovery's own
// (recordedTop, from the state; "" for a state that has none). A journal
// naming any other path — a filesystem of its own, or the host's files in
// a journal planted in an image's top level — is never replayed: it is
// moved to QuarantineDirName and the log says so; what the crashed run
// wrote there stays, the rest of the transaction is undone.
func recoverJournals(top, stateDir, recordedTop, snapshot string, log io.Writer) error {
	ents, err := os.ReadDir(stateDir)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "journal") {
			continue
		}
		dir := filepath.Join(stateDir, e.Name())
		var err error
		if recordedTop != "" {
			discard := ""
			if snapshot != "" {
				discard = filepath.Join(top, filepath.FromSlash(snapshot))
			}
			err = journal.RecoverRebased(dir, recordedTop, top, discard, nil)
		} else {
			err = journal.RecoverWithin(dir, top, nil)
		}
		if !errors.Is(err, journal.ErrRefused) {
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		q := filepath.Join(top, QuarantineDirName, filepath.Base(stateDir)+"-"+e.Name())
		if mkErr := os.MkdirAll(filepath.Dir(q), 0o700); mkErr != nil {
			errs = append(errs, mkErr)
			continue
		}
		if mvErr := os.Rename(dir, q); mvErr != nil {
			errs = append(errs, mvErr)
			continue
		}
		if log != nil {
			fmt.Fprintf(log, "[WARN] snapshot: recovery: a crashed run's journal names paths outside this recovery's mounts, so it was not replayed (%v); what that run wrote outside its snapshots stays; journal kept in /%s\n", err, path.Join(QuarantineDirName, filepath.Base(q)))
		}
	}
	return errors.Join(errs...)
}
