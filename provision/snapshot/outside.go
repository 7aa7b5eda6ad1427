package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/provision/snapshot/btrfs"
)

// Subvolumes mounted outside the root snapshot (/var, /home, ... from the
// target's fstab, subvol=@/var) would escape the transaction: scripts write
// there directly, where no path journal sees it. So the btrfs backend
// snapshots each of them too and the chroot mounts the snapshot instead.
//
// The commit protocol, every step recorded so a crash at any point ends
// all-old or all-new:
//
//  1. state.json lists {orig, snap, trash} before the snapshot exists;
//  2. commit point: the default-subvolume ioctl (as for the root alone);
//  3. for each: rename orig -> trash, rename snap -> orig;
//  4. delete the trash subvolumes, then the state.
//
// Recovery reads the pair's state from what exists: before the commit point
// (default is not the new root and no trash exists) snap is deleted; after
// it the renames are finished (orig and snap both present: orig is still
// the old one; trash and snap present: only the second rename is missing;
// no snap: done) and the trash deleted. Nothing in steps 2-4 fsyncs, so on
// power loss btrfs's ordered transaction commits also leave a prefix of it.

// ErrNotSwappable is wrapped by SnapshotSubvolume when a subvolume cannot
// be taken into the transaction; the caller mounts the original and only
// journaled writes there can be undone.
var ErrNotSwappable = errors.New("cannot be snapshotted into the transaction")

// outsideSubvol is one subvolume taken into the transaction. Paths are from
// the filesystem's top level.
type outsideSubvol struct {
	Target string `json:"target"` // where the target mounts it, e.g. /var
	Orig   string `json:"orig"`   // e.g. /@/var
	Snap   string `json:"snap"`   // the writable snapshot mounted instead
	Trash  string `json:"trash"`  // orig's name between the two commit renames
}

const (
	kpOutsideRecorded   = "btrfs.outside.recorded"
	kpOutsideSnapshot   = "btrfs.outside.snapshot-created"
	kpOutsideOldRenamed = "btrfs.commit.outside-old-renamed"
	kpOutsideNewRenamed = "btrfs.commit.outside-new-renamed"
	kpOutsideTrashed    = "btrfs.commit.outside-old-deleted"
	kpOutsideDeleted    = "btrfs.abort.outside-snapshot-deleted"
)

// SubvolumeSnapshotter is implemented by the btrfs transaction.
type SubvolumeSnapshotter interface {
	// SnapshotSubvolume takes the subvolume subvol (a path from the top
	// level, as fstab's subvol= names it), which the target mounts at
	// target, into the transaction: it returns the path from the top level
	// of a writable snapshot of it to mount instead. Commit puts the
	// snapshot in the original's place, Abort deletes it. An error wrapping
	// ErrNotSwappable says why not (mounted elsewhere, nested subvolumes,
	// read-only, not on this filesystem).
	SnapshotSubvolume(target, subvol string) (string, error)
}

var _ SubvolumeSnapshotter = (*btrfsTxn)(nil)

// SnapshotSubvolume implements SubvolumeSnapshotter.
func (t *btrfsTxn) SnapshotSubvolume(target, subvol string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done {
		return "", errFinished
	}
	orig := path.Clean("/" + subvol)
	notSwappable := func(format string, args ...any) error {
		return fmt.Errorf("snapshot: %s (subvol=%s): %w: %s", target, subvol, ErrNotSwappable, fmt.Sprintf(format, args...))
	}
	for _, o := range t.st.Outside {
		if o.Orig == orig {
			return o.Snap, nil // mounted twice: one snapshot serves both
		}
	}
	switch {
	case orig == "/" || within(t.st.Root, orig) || within(orig, t.st.Root):
		return "", notSwappable("it contains the root subvolume or lies in it")
	case within(orig, "/"+StateDirName):
		return "", notSwappable("it is provision's state directory")
	}
	abs := t.abs(orig)
	if !isSubvol(abs) {
		return "", notSwappable("no such subvolume on %s", t.dev)
	}
	if ro, err := btrfs.ReadOnly(abs); err != nil || ro {
		return "", notSwappable("read-only subvolume (%v)", err)
	}
	if m, ok := mountedElsewhere(t.dev, orig, t.top, t.Root()); ok {
		return "", notSwappable("it is mounted at %s (a running system): its name cannot be swapped under a mounted filesystem, so the original is used and only journaled writes are undone", m)
	}
	if nested, err := btrfs.HasChildSubvolumes(abs); err != nil || nested {
		return "", notSwappable("it has nested subvolumes, which a snapshot would leave out (%v)", err)
	}
	id := filepath.Base(t.stateDir)
	dir, base := path.Dir(orig), path.Base(orig)
	o := outsideSubvol{
		Target: target,
		Orig:   orig,
		Snap:   path.Join(dir, "."+base+".provision-"+id),
		Trash:  path.Join(dir, "."+base+".provision-"+id+"-old"),
	}
	if exists(t.abs(o.Snap)) || exists(t.abs(o.Trash)) {
		return "", fmt.Errorf("snapshot: %s: %s already exists", target, o.Snap)
	}
	// Intent first: whatever exists afterwards is found by recovery.
	t.st.Outside = append(t.st.Outside, o)
	if err := t.writeState(); err != nil {
		t.st.Outside = t.st.Outside[:len(t.st.Outside)-1]
		return "", err
	}
	t.opts.reach(kpOutsideRecorded)
	snap := t.abs(o.Snap)
	if err := btrfs.Snapshot(abs, filepath.Dir(snap), filepath.Base(snap)); err != nil {
		return "", fmt.Errorf("snapshot: %s: %w", target, err)
	}
	t.opts.reach(kpOutsideSnapshot)
	var st unix.Stat_t
	if err := unix.Stat(snap, &st); err != nil {
		return "", fmt.Errorf("snapshot: %w", err)
	}
	t.devMu.Lock()
	t.devs[st.Dev] = true
	t.devMu.Unlock()
	t.opts.logf("%s: writes go to snapshot %s of %s, swapped in at commit", target, o.Snap, orig)
	return o.Snap, nil
}

// within reports whether p is dir or below it (clean slash paths).
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// mountedElsewhere finds a mount (other than our private top level, and the
// chroot's own mounts inside the new snapshot, where a subvolume waits for
// its first write) of the subvolume orig of device dev, or of anything
// inside it.
func mountedElsewhere(dev, orig, top, snapRoot string) (string, bool) {
	mounts, err := btrfs.ReadMountinfo()
	if err != nil {
		return "(mountinfo unreadable: " + err.Error() + ")", true
	}
	for _, m := range mounts {
		if m.FSType == "btrfs" && m.Source == dev && m.MountPoint != top && !within(m.MountPoint, snapRoot) && within(m.Root, orig) {
			return m.MountPoint, true
		}
	}
	return "", false
}

// swapOutside performs step 3 of the protocol for every subvolume; it runs
// after the commit point and is idempotent, so recovery uses it as well.
func swapOutside(top string, outs []outsideSubvol, reach func(string)) error {
	abs := func(p string) string { return filepath.Join(top, filepath.FromSlash(p)) }
	var errs []error
	for _, o := range outs {
		if !isSubvol(abs(o.Snap)) {
			continue // already swapped
		}
		if isSubvol(abs(o.Orig)) {
			if exists(abs(o.Trash)) {
				errs = append(errs, fmt.Errorf("%s: both %s and %s exist", o.Target, o.Orig, o.Trash))
				continue
			}
			if err := os.Rename(abs(o.Orig), abs(o.Trash)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Target, err))
				continue
			}
			reach(kpOutsideOldRenamed)
		}
		if err := os.Rename(abs(o.Snap), abs(o.Orig)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.Target, err))
			continue
		}
		reach(kpOutsideNewRenamed)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, o := range outs {
		if t := abs(o.Trash); isSubvol(t) {
			// Deletion only unlinks; the kernel's cleaner frees the
			// blocks later, so this does not grow with the subvolume.
			if err := btrfs.Delete(filepath.Dir(t), filepath.Base(t)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", o.Target, err))
				continue
			}
			reach(kpOutsideTrashed)
		}
	}
	return errors.Join(errs...)
}

// dropOutside deletes the snapshots of a transaction that did not commit.
func dropOutside(top string, outs []outsideSubvol, reach func(string)) error {
	var errs []error
	for _, o := range outs {
		snap := filepath.Join(top, filepath.FromSlash(o.Snap))
		if !isSubvol(snap) {
			continue
		}
		if err := btrfs.Delete(filepath.Dir(snap), filepath.Base(snap)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.Target, err))
			continue
		}
		reach(kpOutsideDeleted)
	}
	return errors.Join(errs...)
}

// swapStarted reports whether the commit renames began for any subvolume:
// then the transaction had committed, whatever the default is now.
func swapStarted(top string, outs []outsideSubvol) bool {
	for _, o := range outs {
		if exists(filepath.Join(top, filepath.FromSlash(o.Trash))) {
			return true
		}
	}
	return false
}
