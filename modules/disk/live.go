package disk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/fstab"
)

// ErrNotPartition marks a filesystem on a device that is no partition:
// there is no table to grow it in (cloud-init skips such a device).
var ErrNotPartition = errors.New("not a partition")

// Partition is a partition of a disk as the kernel sees it (sysfs).
type Partition struct {
	Dev    string // its node, /dev/vda2
	Disk   string // the whole disk's node, /dev/vda
	Number int    // the kernel's partition number
}

func (p Partition) String() string {
	return fmt.Sprintf("partition %d of %s", p.Number, p.Disk)
}

// sysRoot and devRoot are where sysfs and the device nodes are.
var sysRoot, devRoot = "/sys", "/dev"

// PartitionOf finds the partition whose device number is rdev. A device
// that is not a partition (a whole disk, device-mapper, a loop device
// without partitions) is an error wrapping ErrNotPartition.
func PartitionOf(rdev uint64) (Partition, error) {
	id := fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
	link, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev/block", id))
	if err != nil {
		return Partition{}, fmt.Errorf("block device %s is not in sysfs: %w", id, err)
	}
	name := filepath.Base(link)
	b, err := os.ReadFile(filepath.Join(link, "partition"))
	if err != nil {
		why := "a whole disk"
		if strings.HasPrefix(name, "dm-") {
			why = "a device-mapper device (LVM, LUKS)"
		}
		return Partition{}, fmt.Errorf("%s is %s: %w", filepath.Join(devRoot, name), why, ErrNotPartition)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 1 {
		return Partition{}, fmt.Errorf("%s: partition number %q", name, strings.TrimSpace(string(b)))
	}
	disk := filepath.Base(filepath.Dir(link))
	p := Partition{Dev: filepath.Join(devRoot, name), Disk: filepath.Join(devRoot, disk), Number: n}
	if err := checkNode(p.Dev, rdev); err != nil {
		return p, err
	}
	dd, err := os.ReadFile(filepath.Join(filepath.Dir(link), "dev"))
	if err != nil {
		return p, fmt.Errorf("%s: %w", disk, err)
	}
	var maj, min uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(dd)), "%d:%d", &maj, &min); err != nil {
		return p, fmt.Errorf("%s: device number %q", disk, strings.TrimSpace(string(dd)))
	}
	return p, checkNode(p.Disk, unix.Mkdev(maj, min))
}

// checkNode makes sure the node in /dev is the device sysfs named (a
// stale or missing /dev would otherwise send the writes elsewhere).
func checkNode(node string, rdev uint64) error {
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		return &os.PathError{Op: "stat", Path: node, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != rdev {
		return fmt.Errorf("%s is not block device %d:%d", node, unix.Major(rdev), unix.Minor(rdev))
	}
	return nil
}

// DeviceNumber is the block device number of a device node.
func DeviceNumber(node string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: node, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", node)
	}
	return st.Rdev, nil
}

// Mount is a mounted filesystem's type and its block devices (btrfs may
// have several).
type Mount struct {
	Point  string
	FSType string
	Devs   []MountDev
}

// MountDev is one device of a mounted filesystem; DevID is btrfs's.
type MountDev struct {
	Node  string
	Rdev  uint64
	DevID uint64
}

// MountAt describes the filesystem mounted at dir, which must be a mount
// point: growing the filesystem a directory happens to sit on would grow
// the host's when a tree on a workstation is the target.
func MountAt(dir string) (Mount, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Mount{}, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return Mount{}, err
	}
	fstype, source, rdev, err := mountInfo(abs)
	if err != nil {
		return Mount{}, err
	}
	m := Mount{Point: abs, FSType: fstype}
	if fstype == "btrfs" {
		m.Devs, err = btrfsDevices(abs)
		return m, err
	}
	// ext4, xfs...: the mount's device number is the block device's.
	node := source
	if r, err := DeviceNumber(source); err != nil || r != rdev {
		node = fmt.Sprintf("block device %d:%d", unix.Major(rdev), unix.Minor(rdev))
	}
	m.Devs = []MountDev{{Node: node, Rdev: rdev}}
	return m, nil
}

// mountInfo finds dir in /proc/self/mountinfo (the last mount there wins,
// as it is the one visible).
func mountInfo(dir string) (fstype, source string, rdev uint64, err error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+3 || fstab.UnescapeOctal(fields[4]) != dir {
			continue
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(fields[2], "%d:%d", &maj, &min); err != nil {
			continue
		}
		fstype, source, rdev, found = fields[sep+1], fstab.UnescapeOctal(fields[sep+2]), unix.Mkdev(maj, min), true
	}
	if err := sc.Err(); err != nil {
		return "", "", 0, err
	}
	if !found {
		return "", "", 0, fmt.Errorf("%s is not a mount point: only a filesystem of its own is grown", dir)
	}
	return fstype, source, rdev, nil
}

// Block device ioctls (linux/fs.h, linux/blkpg.h).
const (
	blkSSZGet   = 0x1268
	blkGetSize  = 0x80081272 // BLKGETSIZE64
	blkPG       = 0x1269
	blkRRPart   = 0x125f
	blkpgResize = 3 // BLKPG_RESIZE_PARTITION
)

type blkpgArg struct {
	op      int32
	flags   int32
	datalen int32
	data    uintptr // Go aligns it as C does
}

type blkpgPartition struct {
	start   int64
	length  int64
	pno     int32
	devname [64]byte
	volname [64]byte
}

// GrowLive grows p on its disk and tells the kernel the new size. With
// dryRun it only computes. The table is written and flushed before the
// kernel is told; if the kernel cannot be told, the error says the new
// size takes effect at the next boot.
func GrowLive(p Partition, dryRun bool) (Growth, error) {
	flag := os.O_RDWR
	if dryRun {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(p.Disk, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return Growth{}, err
	}
	defer f.Close()
	fd := int(f.Fd())
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), blkGetSize, uintptr(unsafe.Pointer(&size))); e != 0 {
		return Growth{}, fmt.Errorf("%s: the disk's size (BLKGETSIZE64): %w", p.Disk, e)
	}
	ss, err := unix.IoctlGetInt(fd, blkSSZGet)
	if err != nil {
		return Growth{}, fmt.Errorf("%s: the sector size (BLKSSZGET): %w", p.Disk, err)
	}
	g, err := Grow(f, int64(size), int64(ss), p.Number, dryRun)
	if err != nil || dryRun || !g.Changed() {
		if err != nil {
			err = fmt.Errorf("%s: %w", p.Disk, err)
		}
		return g, err
	}
	if err := f.Sync(); err != nil {
		return g, fmt.Errorf("%s: flushing the new table: %w", p.Disk, err)
	}
	if err := tellKernel(fd, g); err != nil {
		return g, fmt.Errorf("%s: the table says %s now, but the kernel still has the old size until the next boot: %w", p.Disk, g, err)
	}
	return g, nil
}

// tellKernel is partx --update's BLKPG_RESIZE_PARTITION (Linux 3.6+),
// then, where that is not known, a reread of the whole table, which a
// disk with a mounted partition refuses (EBUSY): growpart's chain.
func tellKernel(fd int, g Growth) error {
	part := blkpgPartition{start: g.Start * g.SectorSize, length: (g.NewEnd - g.Start + 1) * g.SectorSize, pno: int32(g.Partition)}
	arg := blkpgArg{op: blkpgResize, datalen: int32(unsafe.Sizeof(part)), data: uintptr(unsafe.Pointer(&part))}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), blkPG, uintptr(unsafe.Pointer(&arg)))
	if e == 0 {
		return nil
	}
	if !errors.Is(e, unix.ENOTTY) && !errors.Is(e, unix.EINVAL) {
		return fmt.Errorf("BLKPG_RESIZE_PARTITION: %w", e)
	}
	if _, _, e2 := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), blkRRPart, 0); e2 != 0 {
		return fmt.Errorf("BLKPG_RESIZE_PARTITION: %v; BLKRRPART: %w", e, e2)
	}
	return nil
}
