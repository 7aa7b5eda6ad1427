// Package chroot prepares a target tree (the new snapshot) for running
// programs in it — the API filesystems, tmpfs /run and /tmp, and the
// target's own /var, /home, ... subvolumes from its fstab — runs programs
// chrooted into it, and tears everything down again: leftover processes are
// killed and every mount made since Setup is unmounted, even after a failure.
//
// Mounts are not put in a private mount namespace (Go threads make that
// fragile); instead the tree is first bind-mounted onto itself and made
// recursively private, so nothing mounted below it propagates to or from the
// host, and Close removes every mount below the tree that was not there
// before Setup.
package chroot

import (
	"context"
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/scripts/process"
	"github.com/provision-dev/provision/sources/blockdev"
)

// DefaultPath is the PATH of programs run in the tree.
const DefaultPath = "/usr/sbin:/usr/bin:/sbin:/bin"

// Options tune Setup.
type Options struct {
	// Timeout bounds every Run (process.DefaultTimeout, 30 min, when zero);
	// provision.script_timeout= sets it.
	Timeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL on a timeout.
	KillGrace time.Duration
	// SnapshotPath is the snapshot as seen from the old root
	// ("/.snapshots/5/snapshot"), exported to Combustion scripts as
	// TRANSACTIONAL_UPDATE_ROOT.
	SnapshotPath string
	// NoFstab skips the target's fstab mounts (only the API filesystems,
	// /run and /tmp are mounted).
	NoFstab bool
	// NoAPI skips /proc, /sys, /dev, /run and /tmp: the tree gets only the
	// target's own filesystems (fstab), for a run that writes files but
	// runs no program. Run refuses then.
	NoAPI bool
	// Log receives one line per mount decision that is not obvious (a
	// skipped nofail entry, a lazy unmount). nil discards.
	Log io.Writer
	// Devices resolves fstab specs to device nodes; nil means the host's
	// /dev and /sys (see DeviceResolver).
	Devices *DeviceResolver
	// Binds are host directories (Source) bind-mounted at Target in the
	// tree after the API filesystems (snapper's /.snapshots for its
	// plugins).
	Binds []Mount
	// EtcOverlay mounts an overlay /etc exactly as the tree's fstab line
	// says (layers below /sysroot mapped into the tree), after the mounts
	// its layers live on, creating missing upper and work directories:
	// the new snapshot of an overlay-/etc target (see etcmodel), whose
	// changes must land in its own upper layer.
	EtcOverlay bool
	// LazySubvolumes defers the snapshot of a subvolume the transaction
	// would take into it (Subvolumes) until a write first reaches it
	// (Env.BeforeChange): the original is mounted meanwhile, read only in
	// effect, and a run that never writes /home or /root makes no snapshot
	// of them — each is a btrfs transaction commit, and a MicroOS root has
	// six. Only for a run in which no program runs (a program writes
	// behind our back), and never for /var, which every run writes and on
	// which an overlay /etc stacks its layers.
	LazySubvolumes bool
	// Optional says whether a mount point of the target's fstab may be
	// left unmounted when its device is missing or will not mount (nil:
	// none may, unless the entry says nofail): the engine's answer is
	// "anything but /var, when no program runs" — a program may write
	// anywhere, and /var holds the run's record. See Env.Unmounted.
	Optional func(target string) bool
	// Only, when set, limits the target's fstab mounts to those the
	// paths in it lie on (a mount point at or above one of them): a look
	// at one file needs none of the others, and each is a mount and an
	// unmount. What is left out is not Unmounted: a write anywhere is
	// the caller's to refuse.
	Only []string
	// Subvolumes, when set, is offered every fstab mount of a subvolume
	// of the root's own btrfs (subvol=...): the transaction snapshots it
	// and the snapshot is mounted instead, so whatever is written there —
	// by scripts too — is committed or thrown away with the root. When it
	// declines, the original is mounted and stays Outside.
	Subvolumes SubvolumeSnapshotter
}

// SubvolumeSnapshotter is snapshot.SubvolumeSnapshotter (the btrfs
// transaction): SnapshotSubvolume returns the subvolume, as a path from the
// filesystem's top level, to mount at target instead of subvol.
type SubvolumeSnapshotter interface {
	SnapshotSubvolume(target, subvol string) (string, error)
}

// Mount is one filesystem mounted into the tree.
type Mount struct {
	Target   string // inside the tree, e.g. "/var"
	HostPath string // where it is on the host
	Source   string // device, or "proc", "tmpfs", a host path for binds
	FSType   string
	Data     string // filesystem options passed to mount(2)
	// Outside is true for a filesystem whose writes do not land in the
	// snapshot and persist: the fstab mounts. The engine journals writes
	// there so an abort can undo them. API filesystems and tmpfs are not.
	Outside bool
	// FstabLine is the line of the target's /etc/fstab it came from (0: none).
	FstabLine int
	// Subvol is the transaction's snapshot mounted in place of the fstab's
	// subvolume (see Options.Subvolumes), "" when none.
	Subvol string
}

// Env is a prepared tree. It implements modules.Executor.
type Env struct {
	root   string // clean, symlink-free host path of the tree
	opts   Options
	tree   *rootfs.Root
	before map[mountKey]bool // mounts below root before the first of ours
	infos  []mountInfo       // the mount table before the first (mountInfo)
	mounts []Mount
	// created lists the mount points Setup made, for Close to remove.
	created []createdDir
	// layers lists the overlay layer directories Setup made on a
	// filesystem outside the snapshot, for Discard.
	layers []string

	mu     sync.Mutex
	closed bool
	// unmounted are the optional fstab mounts left out (see skip).
	unmounted []rootfs.Unmounted
	// deferred are the originals mounted for LazySubvolumes whose
	// snapshot is not taken yet.
	deferred []deferredSnapshot
	// selfBound is set once private has bound the tree onto itself.
	selfBound bool
}

// deferredSnapshot is a subvolume mounted as it is until the first write
// below HostPath (see Options.LazySubvolumes).
type deferredSnapshot struct {
	mount Mount // as planned, before intoTransaction
	flags uintptr
	host  string // its mount point on the host
}

type mountKey struct {
	id    int
	point string
}

// Setup mounts what programs in root need. On error everything mounted so
// far is undone before it returns.
func Setup(ctx context.Context, root string, opts Options) (*Env, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	tree, err := rootfs.New(abs)
	if err != nil {
		return nil, fmt.Errorf("chroot: %w", err)
	}
	if opts.Devices == nil {
		opts.Devices = &DeviceResolver{}
	}
	e := &Env{root: abs, opts: opts, tree: tree}
	if err := e.setup(ctx); err != nil {
		if cerr := e.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return e, nil
}

// private binds the tree onto itself and makes it private before the
// first mount into it: everything below is then invisible to the host's
// other mount namespaces and unmounts never propagate back to /dev. A run
// that mounts nothing (a plain tree, no program, no fstab) skips it.
func (e *Env) private() error {
	if e.selfBound {
		return nil
	}
	infos, err := e.mountInfo()
	if err != nil {
		return err
	}
	e.before = map[mountKey]bool{}
	for _, m := range infos {
		if under(m.MountPoint, e.root) {
			e.before[mountKey{m.ID, m.MountPoint}] = true
		}
	}
	e.selfBound = true // Close looks for our mounts from here on
	if err := fault.Mount(e.root, e.root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("chroot: bind %s onto itself: %w", e.root, err)
	}
	if err := fault.Mount("", e.root, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("chroot: make %s private: %w", e.root, err)
	}
	return nil
}

// mountInfo is the mount table as it was before the first mount of this
// Env, read when first needed: a run that mounts nothing (no program, no
// fstab) never reads it.
func (e *Env) mountInfo() ([]mountInfo, error) {
	if e.infos == nil {
		infos, err := readMountInfo()
		if err != nil {
			return nil, fmt.Errorf("chroot: %w", err)
		}
		e.infos = infos
	}
	return e.infos, nil
}

func (e *Env) setup(ctx context.Context) error {
	api := []Mount{
		{Target: "/proc", Source: "proc", FSType: "proc"},
		{Target: "/sys", Source: "/sys", FSType: "bind"},
		{Target: "/dev", Source: "/dev", FSType: "bind"},
		{Target: "/run", Source: "tmpfs", FSType: "tmpfs", Data: "mode=0755"},
		{Target: "/tmp", Source: "tmpfs", FSType: "tmpfs", Data: "mode=1777"},
	}
	if e.opts.NoAPI {
		api = nil
	}
	for _, m := range api {
		if err := e.mount(m, unix.MS_NOSUID|unix.MS_NODEV); err != nil {
			return err
		}
	}
	for _, b := range e.opts.Binds {
		b.FSType = "bind"
		if err := e.mount(b, 0); err != nil {
			return err
		}
	}
	if e.opts.NoFstab {
		return nil
	}
	data, err := e.tree.ReadFile("/etc/fstab")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("chroot: reading the target's /etc/fstab: %w", err)
	}
	entries, err := ParseFstab("/etc/fstab", data)
	if err != nil {
		return fmt.Errorf("chroot: target %w", err)
	}
	infos, err := e.mountInfo()
	if err != nil {
		return err
	}
	rootMount, _ := mountOf(infos, e.root)
	planned, err := PlanFstab(entries, e.opts.Devices.rootFS(rootMount), e.opts.Devices, e.opts.EtcOverlay, e.opts.Optional, e.log)
	if err != nil {
		return err
	}
	for _, p := range planned {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.opts.Only != nil && !holdsAny(p.Target, e.opts.Only) {
			continue
		}
		if p.FSType == "overlay-etc" {
			if err := e.mountEtcOverlay(p.entry); err != nil {
				return err
			}
			continue
		}
		if p.missing != nil {
			e.skip(p.Mount, p.missing)
			continue
		}
		lazy := false
		switch {
		case p.Outside && p.sameFS && e.opts.LazySubvolumes && e.opts.Subvolumes != nil && p.Target != "/var":
			lazy = true
		case p.Outside && p.sameFS:
			p.Mount = e.intoTransaction(p.Mount)
		}
		if p.Outside && !lazy {
			e.log("%s is outside the snapshot: module writes there are journaled and undone on failure, but what scripts write there directly is NOT undone", p.Target)
		}
		err := e.mount(p.Mount, p.flags)
		if err == nil && lazy {
			e.deferred = append(e.deferred, deferredSnapshot{mount: p.Mount, flags: p.flags, host: e.mounts[len(e.mounts)-1].HostPath})
		}
		if err != nil && p.nofail {
			e.log("skipping %s (nofail): %v", p.Target, err)
			continue
		}
		if err != nil && p.optional {
			e.skip(p.Mount, fmt.Errorf("/etc/fstab:%d: %w", p.FstabLine, err))
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// holdsAny reports whether a mount at point holds one of the paths: it is
// mounted at or above it.
func holdsAny(point string, paths []string) bool {
	for _, p := range paths {
		if under(p, point) {
			return true
		}
	}
	return false
}

// intoTransaction lets the transaction snapshot a subvolume of the root's
// filesystem and points the mount at the snapshot.
func (e *Env) intoTransaction(m Mount) Mount {
	if e.opts.Subvolumes == nil {
		return m
	}
	var subvol string
	var keep []string
	byID := false
	for _, o := range strings.Split(m.Data, ",") {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "subvol":
			subvol = v
		case "subvolid":
			byID = true
		default:
			if o != "" {
				keep = append(keep, o)
			}
		}
	}
	switch {
	case byID:
		e.log("%s: fstab names it by subvolid=, which a snapshot swapped in at commit would not match at boot; the original is mounted", m.Target)
		return m
	case subvol == "":
		return m // the default subvolume: the root itself
	}
	snap, err := e.opts.Subvolumes.SnapshotSubvolume(m.Target, subvol)
	if err != nil {
		e.log("%v", err)
		return m
	}
	// subvolid= goes: the snapshot has its own id.
	m.Data = strings.Join(append([]string{"subvol=" + snap}, keep...), ",")
	m.Subvol, m.Outside = snap, false
	return m
}

// BeforeChange is called before anything below host (a path in the tree)
// changes: a subvolume deferred by LazySubvolumes is snapshotted now, and
// the snapshot mounted over the original, so the change lands in the
// transaction. Nothing was written to the original before, so what was
// read from it is what the snapshot holds.
func (e *Env) BeforeChange(host string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := 0; i < len(e.deferred); i++ {
		d := e.deferred[i]
		if host != d.host && !strings.HasPrefix(host, d.host+"/") {
			continue
		}
		e.deferred = append(e.deferred[:i], e.deferred[i+1:]...)
		m := e.intoTransaction(d.mount)
		if m.Subvol == d.mount.Subvol {
			// Declined (see intoTransaction's log): the original stays,
			// its changes journaled.
			e.log("%s is outside the snapshot: module writes there are journaled and undone on failure", m.Target)
			return nil
		}
		// The kernel refuses a second mount of one filesystem on one
		// mount point (EBUSY), so the original goes first; nothing holds
		// it open (rootfs opens paths anew for every operation).
		if err := e.unmount(d.host, 0); err != nil {
			return fmt.Errorf("chroot: %s: %w", m.Target, err)
		}
		if err := e.mount(m, d.flags); err != nil {
			return fmt.Errorf("chroot: mounting the snapshot of %s: %w", m.Target, err)
		}
		return nil
	}
	return nil
}

// skip leaves an optional fstab mount out: the run goes on, and a write
// below its mount point is refused (Unmounted), since the real mount would
// hide it at boot.
func (e *Env) skip(m Mount, why error) {
	e.log("not mounting %s: %v; nothing this run does needs it (a write below it is refused)", m.Target, why)
	e.unmounted = append(e.unmounted, rootfs.Unmounted{Dir: m.Target, Why: why.Error()})
}

// Unmounted lists the target's fstab mount points left unmounted because
// their device is missing and nothing in the run needs them.
func (e *Env) Unmounted() []rootfs.Unmounted {
	return append([]rootfs.Unmounted(nil), e.unmounted...)
}

func (e *Env) log(format string, args ...any) {
	if e.opts.Log != nil {
		fmt.Fprintf(e.opts.Log, "chroot: "+format+"\n", args...)
	}
}

// mount performs one mount below the tree, creating the mount point inside
// the tree when missing. The mount point is resolved with chroot semantics,
// so a symlink in the target cannot place a mount on the host.
func (e *Env) mount(m Mount, flags uintptr) error {
	if err := e.private(); err != nil {
		return err
	}
	host, err := e.tree.ResolveFollow(m.Target)
	if err != nil {
		return fmt.Errorf("chroot: mount point %s: %w", m.Target, err)
	}
	if st, err := os.Stat(host); err != nil {
		e.noteCreated(host)
		if err := e.tree.MkdirAll(m.Target, 0o755, rootfs.RootOwner); err != nil {
			return fmt.Errorf("chroot: creating mount point %s: %w", m.Target, err)
		}
	} else if !st.IsDir() {
		return fmt.Errorf("chroot: mount point %s is not a directory", m.Target)
	}
	m.HostPath = host
	switch m.FSType {
	case "bind-tree":
		src, err := e.tree.ResolveFollow(m.Source)
		if err != nil {
			return fmt.Errorf("chroot: bind source %s: %w", m.Source, err)
		}
		m.Source, m.FSType = src, "bind"
		if err := fault.Mount(src, host, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("chroot: bind %s on %s: %w", src, m.Target, err)
		}
		e.mounts = append(e.mounts, m)
	case "bind":
		// Binds of host trees keep their own flags; nosuid/nodev would
		// need a remount and /dev needs device nodes.
		if err := fault.Mount(m.Source, host, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("chroot: bind %s on %s: %w", m.Source, m.Target, err)
		}
		// Record before making it private so Close unmounts it even if
		// that fails.
		e.mounts = append(e.mounts, m)
		if err := fault.Mount("", host, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("chroot: make %s private: %w", m.Target, err)
		}
	default:
		err := fault.Mount(m.Source, host, m.FSType, flags, m.Data)
		if err != nil && m.Target == "/proc" {
			// A fresh procfs is refused in some containers; a bind works.
			m.FSType, m.Source = "bind", "/proc"
			return e.mount(m, 0)
		}
		if err != nil {
			return fmt.Errorf("chroot: mount %s (%s) on %s: %w", m.Source, m.FSType, m.Target, blockdev.ReadOnlyError(m.Source, err))
		}
		e.mounts = append(e.mounts, m)
	}
	return nil
}

// Root is the tree's host path.
func (e *Env) Root() string { return e.root }

// Mounts lists what Setup mounted, in mount order.
func (e *Env) Mounts() []Mount { return append([]Mount(nil), e.mounts...) }

// OutsideSnapshot lists the host paths of the mounted filesystems whose
// writes persist outside the snapshot (the fstab mounts: /var, /home, ...).
func (e *Env) OutsideSnapshot() []string {
	var out []string
	for _, m := range e.mounts {
		if m.Outside {
			out = append(out, m.HostPath)
		}
	}
	return out
}

// SnapshotPath is Options.SnapshotPath (see scripts.SnapshotPather).
func (e *Env) SnapshotPath() string { return e.opts.SnapshotPath }

// Run runs cmd chrooted into the tree: clean environment (PATH, LANG=C, then
// cmd.Env), cwd cmd.Dir inside the tree ("/" when empty), its own process
// group, the configured timeout, output line by line to cmd.Output. A normal
// exit returns its status and a nil error; a signal, timeout or failure to
// start is an error.
func (e *Env) Run(ctx context.Context, cmd modules.Command) (int, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return -1, errors.New("chroot: run after Close")
	}
	if e.opts.NoAPI {
		return -1, errors.New("chroot: prepared without /proc, /sys and /dev (Options.NoAPI): no program may run in it")
	}
	if len(cmd.Argv) == 0 {
		return -1, errors.New("chroot: empty command")
	}
	env := mergeEnv([]string{"PATH=" + DefaultPath, "LANG=C"}, cmd.Env)
	prog, err := e.lookPath(cmd.Argv[0], envValue(env, "PATH"))
	if err != nil {
		return -1, err
	}
	dir := cmd.Dir
	if dir == "" {
		dir = "/"
	}
	if err := fault.At(fault.PointExec); err != nil {
		return -1, fmt.Errorf("%s: %w", cmd.Argv[0], err)
	}
	code, err := process.Run(ctx, process.Spec{
		Path:      prog,
		Argv:      cmd.Argv,
		Chroot:    e.root,
		Dir:       dir,
		Env:       env,
		Stdin:     cmd.Stdin,
		Output:    cmd.Output,
		Timeout:   e.opts.Timeout,
		KillGrace: e.opts.KillGrace,
	})
	if err != nil {
		return code, fmt.Errorf("%s: %w", cmd.Argv[0], err)
	}
	return code, nil
}

// lookPath finds name in the tree's PATH, as a path inside the tree. A name
// with a slash is used as given (relative to the cwd, after the chroot).
func (e *Env) lookPath(name, pathList string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !strings.HasPrefix(dir, "/") {
			continue // a relative PATH entry would depend on the cwd
		}
		p := path.Join(dir, name)
		st, err := e.tree.Stat(p)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the target's PATH (%s)", name, pathList)
}

// mergeEnv returns base with every KEY=VALUE of over replacing or adding.
func mergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if bk, _, _ := strings.Cut(b, "="); bk == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Close kills every process whose root is in the tree, then unmounts every
// mount below the tree made since Setup (its own, and any a script left),
// deepest first, lazily as a last resort. It is safe to call more than
// once, and on a nil *Env (a failed Setup's result, possibly held in an
// interface), where there is nothing to close.
func (e *Env) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()

	var errs []error
	// Prepared without /proc, nothing could run in it (Run refuses): no
	// process of ours to look for in every /proc/PID/root.
	if !e.opts.NoAPI {
		if err := KillProcesses(e.root); err != nil {
			errs = append(errs, err)
		}
	}
	// private comes before every mount: without it nothing was mounted.
	if e.selfBound {
		if err := e.unmountAll(); err != nil {
			errs = append(errs, err)
		} else {
			e.removeCreated()
		}
	}
	return errors.Join(errs...)
}

// createdDir is a mount point directory Setup had to create: the topmost
// missing component and its parent's times, so Close can leave the tree as
// it found it (a minimal tree without /proc stays without it, byte for byte).
type createdDir struct {
	top          string
	parent       string
	atime, mtime time.Time
}

// noteCreated records the topmost missing ancestor of host before it is made.
func (e *Env) noteCreated(host string) {
	top := host
	for {
		parent := filepath.Dir(top)
		if parent == top || !strings.HasPrefix(parent, e.root) {
			break
		}
		if _, err := os.Lstat(parent); err == nil {
			break
		}
		top = parent
	}
	parent := filepath.Dir(top)
	var st unix.Stat_t
	if err := unix.Stat(parent, &st); err != nil {
		return
	}
	e.created = append(e.created, createdDir{
		top:    top,
		parent: parent,
		atime:  time.Unix(st.Atim.Unix()),
		mtime:  time.Unix(st.Mtim.Unix()),
	})
}

// removeCreated deletes the mount points Setup created, newest first, when
// they are empty again, and restores their parents' times.
func (e *Env) removeCreated() {
	for i := len(e.created) - 1; i >= 0; i-- {
		c := e.created[i]
		if removeEmptyDirs(c.top) == nil {
			os.Chtimes(c.parent, c.atime, c.mtime)
		}
	}
	e.created = nil
}

// removeEmptyDirs removes dir and the empty directories below it; anything
// else found there (a file a program left) keeps it and is reported.
func removeEmptyDirs(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if !ent.IsDir() || ent.Type()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is not empty", dir)
		}
		if err := removeEmptyDirs(filepath.Join(dir, ent.Name())); err != nil {
			return err
		}
	}
	return os.Remove(dir)
}

func (e *Env) unmountAll() error {
	var lastErr error
	for round := 0; round < 8; round++ {
		infos, err := readMountInfo()
		if err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		var ours []mountInfo
		for _, m := range infos {
			if under(m.MountPoint, e.root) && !e.before[mountKey{m.ID, m.MountPoint}] {
				ours = append(ours, m)
			}
		}
		if len(ours) == 0 {
			return nil
		}
		// Deepest first; for stacked mounts on one point, the newest first.
		sort.SliceStable(ours, func(i, j int) bool {
			di, dj := strings.Count(ours[i].MountPoint, "/"), strings.Count(ours[j].MountPoint, "/")
			if di != dj {
				return di > dj
			}
			return ours[i].ID > ours[j].ID
		})
		var errs []error
		for _, m := range ours {
			if err := e.unmount(m.MountPoint, round); err != nil {
				errs = append(errs, err)
			}
		}
		lastErr = errors.Join(errs...)
	}
	if lastErr != nil {
		return lastErr
	}
	return fmt.Errorf("chroot: mounts below %s remain after repeated unmounting", e.root)
}

// unmount tries a clean unmount, a few times when busy (a process may just
// be exiting), then MNT_DETACH.
func (e *Env) unmount(point string, round int) error {
	for try := 0; try < 3; try++ {
		err := fault.Unmount(point, unix.UMOUNT_NOFOLLOW)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			// EINVAL: no longer a mount point (a parent took it along).
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("chroot: unmount %s: %w", point, err)
		}
		if round == 0 && try == 0 {
			// Something still uses it: maybe a process that got in
			// after the first sweep.
			_ = KillProcesses(e.root)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.log("%s busy, detaching it lazily", point)
	if err := fault.Unmount(point, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("chroot: lazy unmount %s: %w", point, err)
	}
	return nil
}

// KillProcesses SIGKILLs every process whose root directory (/proc/PID/root)
// is root or below it, and waits (up to 5 s) until they are gone.
func KillProcesses(root string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := processesIn(root)
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chroot: processes %v in %s survive SIGKILL", pids, root)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func processesIn(root string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		// A zombie's root link is unreadable: it holds nothing any more.
		link, err := os.Readlink("/proc/" + d.Name() + "/root")
		if err != nil {
			continue
		}
		if under(link, root) && root != "/" {
			pids = append(pids, pid)
		}
	}
	return pids
}
