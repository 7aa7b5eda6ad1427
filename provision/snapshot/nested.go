package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fstab"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/snapshot/btrfs"
)

// A btrfs snapshot is not recursive: every subvolume nested inside the root
// (MicroOS since 2025 keeps /etc as one, @/.snapshots/N/snapshot/etc, with
// "/etc /etc none bind" in fstab) shows up in the new snapshot as an empty
// directory. Left so, the new root boots with an empty /etc. So Begin
// replaces each such stub by a snapshot of the nested subvolume, as
// transactional-update's 50-etc snapper plugin does for /etc, and deletion
// (abort, recovery) removes nested subvolumes first (btrfs.DeleteTree).
//
// Not carried: subvolumes the target's fstab mounts something else on (a
// root that holds its own /.snapshots or /var: the stub is their mount
// point) and everything below a root that is the filesystem's top level
// (its children are other roots and sibling subvolumes, not parts of it).

// nestedPlan lists the nested subvolumes of the root to carry into the new
// snapshot, read before the snapshot exists.
type nestedPlan struct {
	carry   []string // paths relative to the root, parents before children
	skipped []string // with the reason, for the log
}

// planNested decides which subvolumes nested in the subvolume at root (id
// rootID) the new snapshot must carry over.
func planNested(root string, rootID uint64) (nestedPlan, error) {
	var p nestedPlan
	if rootID == btrfs.TopLevelID {
		return p, nil
	}
	mountPoints, err := fstabMountPoints(root)
	if err != nil {
		return p, err
	}
	var walk func(sub, rel string) error
	walk = func(sub, rel string) error {
		kids, err := btrfs.ChildSubvolumes(sub)
		if err != nil {
			return fmt.Errorf("snapshot: listing the subvolumes nested in %s: %w", sub, err)
		}
		for _, k := range kids {
			kr := path.Join(rel, k.Path)
			if mountPoints["/"+kr] {
				p.skipped = append(p.skipped, "/"+kr+" (a mount point in the target's fstab)")
				continue
			}
			abs := filepath.Join(root, filepath.FromSlash(kr))
			ro, err := btrfs.ReadOnly(abs)
			if err != nil {
				return fmt.Errorf("snapshot: nested subvolume /%s: %w", kr, err)
			}
			if ro {
				return fmt.Errorf("snapshot: /%s is a read-only subvolume nested in the root: a snapshot of the root leaves it out and provision will not carry a read-only subvolume over as a writable one; nothing was written", kr)
			}
			p.carry = append(p.carry, kr)
			if err := walk(abs, kr); err != nil {
				return err
			}
		}
		return nil
	}
	return p, walk(root, "")
}

// fstabMountPoints reads the mount points of the root's fstab that mount a
// filesystem of their own: not "/", not swap, and not a bind of the path
// onto itself (the nested /etc line), which names the nested subvolume.
func fstabMountPoints(root string) (map[string]bool, error) {
	out := map[string]bool{}
	name := filepath.Join(root, "etc", "fstab")
	r, err := rootfs.New(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	// Read confined to the root: an absolute symlink resolves inside it.
	data, err := r.ReadFile("/etc/fstab")
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	entries, err := fstab.Parse(name, data)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.File, "/") || e.VfsType == "swap" {
			continue
		}
		file := path.Clean(e.File)
		if file == "/" || (e.HasOption("bind") && path.Clean(e.Spec) == file) {
			continue
		}
		out[file] = true
	}
	return out, nil
}

// carryNested replaces the stubs the snapshot snap has for the planned
// nested subvolumes of root by writable snapshots of them, parents first,
// and records each one's st_dev as part of the transaction.
func (t *btrfsTxn) carryNested(root, snap string, plan nestedPlan) error {
	for _, s := range plan.skipped {
		t.opts.logf("nested subvolume %s not carried over", s)
	}
	for _, rel := range plan.carry {
		src := filepath.Join(root, filepath.FromSlash(rel))
		stub := filepath.Join(snap, filepath.FromSlash(rel))
		if isSubvol(stub) {
			// The target's snapper plugin (transactional-update's
			// 50-etc) carried it over already.
			t.opts.logf("nested subvolume /%s: already carried over by a snapper plugin", rel)
			t.addDev(stub)
			continue
		}
		if err := os.Remove(stub); err != nil {
			return fmt.Errorf("snapshot: replacing the empty /%s the snapshot has for a nested subvolume: %w", rel, err)
		}
		if err := btrfs.Snapshot(src, filepath.Dir(stub), filepath.Base(stub)); err != nil {
			return fmt.Errorf("snapshot: nested subvolume /%s: %w", rel, err)
		}
		if err := t.addDev(stub); err != nil {
			return err
		}
		t.opts.logf("nested subvolume /%s carried over: a snapshot of it is in the new root", rel)
	}
	return nil
}

// addDev records the st_dev of the subvolume at p as part of the
// transaction (writes there need no journal).
func (t *btrfsTxn) addDev(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	t.devMu.Lock()
	t.devs[st.Dev] = true
	t.devMu.Unlock()
	return nil
}
