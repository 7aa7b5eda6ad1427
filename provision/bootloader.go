package provision

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/bootentry"
	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/provision/snapshot"
)

// On systemd-boot (and grub2-bls) targets every snapshot boots from its own
// loader entry with rootflags=subvol=@/.snapshots/N/snapshot: the btrfs
// default changes nothing there. So after the commit the run adds the new
// snapshot's entries and makes them the default on the ESP, as sdbootutil's
// snapper plugin does on set-default-snapshot-post (if the target's own
// plugin already did, only the default is checked).

// describeBootLoader says how the next boot will find the new snapshot.
func describeBootLoader(root string) string {
	l, err := bootentry.Detect(root)
	switch {
	case err != nil:
		return "boot: " + err.Error()
	case l == nil:
		return "boot: the btrfs default subvolume decides (GRUB with SUSE's btrfs snapshot booting, or a root= without rootflags=subvol=)"
	}
	return "boot: " + bootentry.Describe(l) + ": an entry for the new snapshot is added and made the default"
}

// bootEntries is the boot-loader work of one run: detected in the new
// snapshot before the commit (its tree is reachable only until then),
// applied after it.
type bootEntries struct {
	loader *bootentry.Loader
	info   snapshot.SnapperInfo
}

// prepareBootEntries returns nil when the target boots from the btrfs
// default (no BLS entries) or is not in snapper's layout.
func prepareBootEntries(txn Txn) (*bootEntries, error) {
	n, ok := txn.(snapshot.Numbered)
	if !ok {
		return nil, nil
	}
	info, ok := n.Snapper()
	if !ok || info.Base == 0 {
		return nil, nil
	}
	l, err := bootentry.Detect(txn.Root())
	if err != nil || l == nil {
		return nil, err
	}
	if st, err := os.Stat("/sys/firmware/efi/efivars"); err == nil && st.IsDir() {
		l.EFIVars = "/sys/firmware/efi/efivars"
	}
	return &bootEntries{loader: l, info: info}, nil
}

// apply mounts the ESP named by the target's fstab, adds the entries of
// the new snapshot and makes it the default.
func (b *bootEntries) apply(console io.Writer) (bootentry.Change, error) {
	dev, err := (&chroot.DeviceResolver{}).Resolve(b.loader.ESPSpec)
	if err != nil {
		return bootentry.Change{}, fmt.Errorf("the ESP %s (fstab %s): %w", b.loader.ESPSpec, b.loader.ESPMount, err)
	}
	mnt, err := os.MkdirTemp(runDir(), "provision-esp-")
	if err != nil {
		return bootentry.Change{}, err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(dev, mnt, "vfat", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		if errors.Is(err, unix.ENODEV) {
			err = fmt.Errorf("%w (no vfat driver in this kernel)", err)
		}
		return bootentry.Change{}, fmt.Errorf("mounting the ESP %s (%s): %w", dev, b.loader.ESPSpec, err)
	}
	prefix := strings.Trim(path.Dir(path.Dir(path.Dir(b.info.TopPath))), "/")
	c, err := bootentry.AddSnapshot(mnt, b.loader, b.info.Base, b.info.Num, prefix)
	if serr := rootfs.SyncFS(mnt); err == nil && serr != nil {
		err = serr
	}
	if uerr := unix.Unmount(mnt, 0); err == nil && uerr != nil {
		err = fmt.Errorf("unmounting the ESP: %w", uerr)
	}
	if err != nil {
		return c, err
	}
	fmt.Fprintf(console, "[ OK ] boot: %d entr(y/ies) for snapshot %d on the ESP (%s), default %q (was %q)\n", len(c.Created)+len(c.Existing), b.info.Num, b.loader.ESPSpec, c.NewDefault, c.OldDefault)
	return c, nil
}

// runDir is where temporary mount points go: /run when writable.
func runDir() string {
	if unix.Access("/run", unix.W_OK) == nil {
		return "/run"
	}
	return os.TempDir()
}
