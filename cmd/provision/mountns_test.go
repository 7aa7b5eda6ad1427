package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A run is copied into a private mount namespace from the start in the
// initrd and on a target that mounts whatever the config says (an fstab);
// on a plain tree it is decided once the config shows programs.
func TestMountsFromTheStart(t *testing.T) {
	defer func(f func() bool) { inInitrd = f }(inInitrd)
	inInitrd = func() bool { return false }
	plain := t.TempDir()
	if mountsFromTheStart(plain) {
		t.Error("a plain tree without an fstab mounts from the start")
	}
	withFstab := t.TempDir()
	os.MkdirAll(filepath.Join(withFstab, "etc"), 0o755)
	os.WriteFile(filepath.Join(withFstab, "etc/fstab"), []byte("tmpfs /var tmpfs defaults 0 0\n"), 0o644)
	if !mountsFromTheStart(withFstab) {
		t.Error("a tree with an fstab does not mount from the start")
	}
	for _, fstab := range []string{
		"# UNCONFIGURED FSTAB FOR BASE SYSTEM\n",
		"UUID=1234 / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n",
		"/dev/sdb1 /mnt/data ext4 defaults 0 2\n",
	} {
		mountsNothing := t.TempDir()
		os.MkdirAll(filepath.Join(mountsNothing, "etc"), 0o755)
		os.WriteFile(filepath.Join(mountsNothing, "etc/fstab"), []byte(fstab), 0o644)
		if mountsFromTheStart(mountsNothing) {
			t.Errorf("a tree whose fstab the chroot would not mount from mounts from the start:\n%s", fstab)
		}
	}
	for _, fstab := range []string{
		"UUID=1234 /home/ btrfs subvol=@/home 0 0\n",
		"/dev/sda1 /boot/efi vfat x-initrd.mount 0 2\n",
		"/dev/sda2 /var\n", // not fstab(5): the run's own parse says so
	} {
		mounts := t.TempDir()
		os.MkdirAll(filepath.Join(mounts, "etc"), 0o755)
		os.WriteFile(filepath.Join(mounts, "etc/fstab"), []byte(fstab), 0o644)
		if !mountsFromTheStart(mounts) {
			t.Errorf("a tree with this fstab does not mount from the start:\n%s", fstab)
		}
	}
	linked := t.TempDir()
	os.MkdirAll(filepath.Join(linked, "etc"), 0o755)
	os.Symlink("/etc/fstab", filepath.Join(linked, "etc/fstab"))
	if !mountsFromTheStart(linked) {
		t.Error("a symlinked fstab (not read outside the tree) counts as mounting nothing")
	}
	if !mountsFromTheStart(filepath.Join(plain, "missing")) {
		t.Error("a root that cannot be examined counts as not mounting")
	}
	inInitrd = func() bool { return true }
	if !mountsFromTheStart(plain) {
		t.Error("in the initrd a run does not mount from the start")
	}
}
