// Package snapshot is the provisioning transaction (SPEC §6): everything the
// modules write goes into a tree that only becomes the system when Commit
// succeeds. On btrfs the tree is a new writable snapshot of the root
// subvolume (snapper-aware), and the commit is the one ioctl that makes it
// the default subvolume; on other filesystems it is the root itself with a
// journal of originals. Writes outside the snapshot (/var, /home mounted
// from their own subvolumes) are taken into the transaction as snapshots of
// those subvolumes when they are on the root's btrfs (swapped in at commit,
// see outside.go), and journaled otherwise: then only writes made through
// modules/rootfs are undone, not what scripts write there directly. A crash at any
// point is undone or finished by Recover on the next run.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
	"github.com/provision-dev/provision/provision/snapshot/journal"
)

// Txn is one transaction. Root is where the modules write. Commit flushes
// the filesystem holding Root (one syncfs) before its commit point, so
// nothing written there need be flushed by the caller. Commit and Abort
// must be called after the caller has unmounted everything it mounted below
// Root (the kernel refuses to delete a subvolume that is mounted).
type Txn interface {
	Root() string
	// Journal keeps originals of paths changed outside the snapshot (or of
	// the whole tree for the journal backend); it may be nil.
	Journal() rootfs.Journal
	Commit(ctx context.Context) error
	Abort(ctx context.Context) error
}

// Options for Begin.
type Options struct {
	Description string // snapper description; default "Snapshot Update of #N" as transactional-update
	// DryRun makes a transaction that writes nothing: Root is the root
	// itself (read only use), Journal only logs, Commit and Abort log what
	// a real run would do.
	DryRun bool
	// KillPoint names a step (see KillPoints) at which the process sends
	// itself SIGKILL; "step#N" waits for the Nth time the step is reached
	// (for steps that repeat, like journal.preserve.recorded). For crash
	// tests only; PROVISION_TEST_KILLPOINT in the environment does the same.
	KillPoint string
	Log       io.Writer // may be nil
	// Plugins, when set, runs the target's snapper plugins for the events
	// snapper itself would emit on a snapshot in its layout (create,
	// set-read-only, set-default, modify), in order; snapshotsDir is the
	// host path of the .snapshots subvolume. A failure before the commit
	// point fails the transaction (as transactional-update treats a failed
	// snapper call); after it, it is logged.
	Plugins func(ctx context.Context, num uint64, snapshotsDir string, events ...string) error
}

// Snapper's plugin events (snapper/PluginsImpl.cc); GrubRefresh is the
// legacy /usr/lib/snapper/plugins/grub --refresh call openSUSE's snapper
// makes after creating, modifying or changing the read-only flag.
const (
	EventCreatePre    = "create-snapshot-pre"
	EventCreate       = "create-snapshot"
	EventCreatePost   = "create-snapshot-post"
	EventModifyPre    = "modify-snapshot-pre"
	EventModify       = "modify-snapshot"
	EventModifyPost   = "modify-snapshot-post"
	EventReadOnlyPre  = "set-read-only-pre"
	EventReadOnlyPost = "set-read-only-post"
	EventDefaultPre   = "set-default-snapshot-pre"
	EventDefault      = "set-default-snapshot"
	EventDefaultPost  = "set-default-snapshot-post"
	EventDeletePre    = "delete-snapshot-pre"
	EventDelete       = "delete-snapshot"
	EventDeletePost   = "delete-snapshot-post"
	GrubRefresh       = "grub --refresh"
)

// plugins runs events for the transaction's snapper snapshot, if any.
func (t *btrfsTxn) plugins(ctx context.Context, events ...string) error {
	if t.opts.Plugins == nil || t.st.SnapperDir == "" {
		return nil
	}
	dir := t.abs(path.Dir(t.st.SnapperDir))
	if err := t.opts.Plugins(ctx, t.st.Num, dir, events...); err != nil {
		return fmt.Errorf("snapshot: snapper plugins (%s): %w", strings.Join(events, ", "), err)
	}
	return nil
}

// pluginsAfterCommit runs events past the commit point: failures are
// logged only, the new root is the system already.
func (t *btrfsTxn) pluginsAfterCommit(ctx context.Context, events ...string) {
	if err := t.plugins(ctx, events...); err != nil {
		t.opts.logf("warning: %v", err)
	}
}

// KillPointEnv is the environment variable crash tests set.
const KillPointEnv = "PROVISION_TEST_KILLPOINT"

// Step names, in the order a transaction passes them.
const (
	kpBtrfsTopMounted     = "btrfs.begin.top-mounted"
	kpBtrfsStateWritten   = "btrfs.begin.state-written"
	kpBtrfsSnapperDir     = "btrfs.begin.snapper-dir-created"
	kpBtrfsInfoWritten    = "btrfs.begin.info-written"
	kpBtrfsSnapshot       = "btrfs.begin.snapshot-created"
	kpBtrfsSynced         = "btrfs.commit.synced"
	kpBtrfsReadOnly       = "btrfs.commit.readonly-set"
	kpBtrfsDefaultSet     = "btrfs.commit.default-set"
	kpBtrfsMarkerRemoved  = "btrfs.commit.marker-removed"
	kpBtrfsJournalRemoved = "btrfs.commit.journal-removed"
	kpBtrfsStateRemoved   = "btrfs.commit.state-removed"
	kpBtrfsDefaultReset   = "btrfs.abort.default-reset"
	kpBtrfsJournalUndone  = "btrfs.abort.journal-restored"
	kpBtrfsSnapDeleted    = "btrfs.abort.snapshot-deleted"
	kpBtrfsSnapperRemoved = "btrfs.abort.snapper-dir-removed"
	kpBtrfsAbortState     = "btrfs.abort.state-removed"
	kpJournalBegun        = "journal.begin.done"
	kpJournalCommitted    = "journal.commit.done"
	kpJournalAborted      = "journal.abort.done"
)

// KillPoints lists every step name Options.KillPoint accepts, in order:
// btrfs begin, journal steps (shared by both backends: apply, commit,
// rollback), btrfs commit and abort, journal backend ends.
func KillPoints() []string {
	return []string{
		kpBtrfsTopMounted, kpBtrfsStateWritten, kpBtrfsSnapperDir, kpBtrfsInfoWritten, kpBtrfsSnapshot,
		journal.StepCreated, kpJournalBegun,
		kpOutsideRecorded, kpOutsideSnapshot,
		journal.StepDataCopied, journal.StepRecorded,
		kpBtrfsSynced, kpBtrfsReadOnly, kpBtrfsDefaultSet,
		kpOutsideOldRenamed, kpOutsideNewRenamed, kpOutsideTrashed,
		kpBtrfsMarkerRemoved,
		journal.StepCommitRenamed, journal.StepCommitRemoved,
		kpBtrfsJournalRemoved, kpBtrfsStateRemoved, kpJournalCommitted,
		kpBtrfsDefaultReset,
		journal.StepEntryRestored, journal.StepRestored, journal.StepRollbackRenamed, journal.StepRollbackRemoved,
		kpBtrfsJournalUndone, kpOutsideDeleted, kpBtrfsSnapDeleted, kpBtrfsSnapperRemoved, kpBtrfsAbortState,
		kpJournalAborted,
	}
}

// passes counts how often each step was reached, for "step#N" kill points.
var passes = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

// reach is called at every named step.
func (o *Options) reach(step string) {
	want := o.KillPoint
	if want == "" {
		want = os.Getenv(KillPointEnv)
	}
	name, nth, _ := strings.Cut(want, "#")
	if want == "" || name != step {
		return
	}
	if nth != "" {
		passes.Lock()
		passes.n[step]++
		n := passes.n[step]
		passes.Unlock()
		if strconv.Itoa(n) != nth {
			return
		}
	}
	o.logf("killpoint %s: SIGKILL", want)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; never go past the step
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, "snapshot: "+format+"\n", args...)
	}
}

// description is snapper's description of the new snapshot: the one
// transactional-update gives its snapshots unless the caller names another.
func (o *Options) description(base uint64) string {
	if o.Description != "" {
		return o.Description
	}
	if base == 0 {
		return "Snapshot Update"
	}
	return fmt.Sprintf("Snapshot Update of #%d", base)
}

// Begin starts a transaction on the tree at root: the btrfs backend when
// root is the root of a btrfs subvolume, the journal backend otherwise.
// Call Recover first.
func Begin(ctx context.Context, root string, opts Options) (Txn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	abs, err := cleanRoot(root)
	if err != nil {
		return nil, err
	}
	isSub, err := btrfs.IsSubvolume(abs)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if opts.DryRun {
		backend := "journal"
		if isSub {
			backend = "btrfs"
		}
		opts.logf("dry run: would begin a %s transaction on %s", backend, abs)
		return &dryTxn{root: abs, backend: backend, opts: opts}, nil
	}
	if isSub {
		return beginBtrfs(ctx, abs, opts)
	}
	return beginJournal(abs, opts)
}

// Recover finishes or undoes whatever a crashed run left behind on root:
// open journals are rolled back; an in-progress btrfs snapshot is deleted
// unless it already is the default subvolume (then the crash came after
// the commit point and only the bookkeeping is finished).
func Recover(ctx context.Context, root string) error { return RecoverLogged(ctx, root, nil) }

// RecoverLogged is Recover telling log (nil: nobody) what it could not
// undo and why.
func RecoverLogged(ctx context.Context, root string, log io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	abs, err := cleanRoot(root)
	if err != nil {
		return err
	}
	var errs []error
	if err := recoverJournalBackend(abs); err != nil {
		errs = append(errs, err)
	}
	isSub, err := btrfs.IsSubvolume(abs)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if isSub {
		if err := recoverBtrfs(ctx, abs, log); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func cleanRoot(root string) (string, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("snapshot: root: %w", err)
	}
	return abs, nil
}

// txnID names a transaction: sortable, unique enough for one machine.
func txnID(now time.Time) string {
	return fmt.Sprintf("%s-%d", now.UTC().Format("20060102T150405Z"), os.Getpid())
}

// dryTxn records instead of writing.
type dryTxn struct {
	root, backend string
	opts          Options
	mu            sync.Mutex
	preserved     []string
}

func (t *dryTxn) Root() string            { return t.root }
func (t *dryTxn) Journal() rootfs.Journal { return t }

// Preserve records that a real run would keep hostPath.
func (t *dryTxn) Preserve(hostPath string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.preserved = append(t.preserved, hostPath)
	t.opts.logf("dry run: would keep the original of %s", hostPath)
	return nil
}

func (t *dryTxn) Commit(context.Context) error {
	if t.backend == "btrfs" {
		t.opts.logf("dry run: would set the new snapshot of %s as the default subvolume", t.root)
	} else {
		t.opts.logf("dry run: would delete the journal of %s", t.root)
	}
	return nil
}

func (t *dryTxn) Abort(context.Context) error {
	t.opts.logf("dry run: nothing to abort on %s", t.root)
	return nil
}

// errFinished is returned by a second Commit or Abort.
var errFinished = errors.New("snapshot: transaction already finished")

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
