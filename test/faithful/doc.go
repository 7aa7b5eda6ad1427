// Package faithful builds test disks shaped like the openSUSE images a
// first-boot agent meets: MicroOS, SLE/Leap Micro and SL Micro, in the
// variants A-F of shared/research/microos-reality.md §7.1 (nested or
// overlay /etc, GRUB or systemd-boot, the Raspberry Pi layout, /var on
// its own partition).
//
// The disks are real: a partition table made by sfdisk, btrfs with the
// snapper layout (@, @/.snapshots, snapshot 1 read-only and the default
// subvolume, sibling subvolumes, the exact fstab), a vfat ESP written with
// mtools, all on loop devices. Any populated tree can be the OS: a small
// busybox tree for the root tier tests, a debootstrapped Debian root with
// kernel and dracut initrd for the VM tier.
//
// Build makes a disk; Attach, MountRoot and MountInitrd bring it up the
// way an initrd would; Inspect reads it offline after the code under test
// ran. Everything needs root, loop devices and btrfs-progs, sfdisk,
// dosfstools and mtools.
package faithful
