package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls growing needs (linux/btrfs.h); their arguments are
// 4096 bytes but the fs_info one (1024).
const (
	btrfsMagic   = 0x94
	btrfsArgSize = 4096
	iocWrite     = 1
	iocRead      = 2
)

func btrfsIoc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | btrfsMagic<<8 | nr
}

var (
	iocResize  = btrfsIoc(iocWrite, 3, btrfsArgSize)
	iocDevInfo = btrfsIoc(iocWrite|iocRead, 30, btrfsArgSize)
	iocFSInfo  = btrfsIoc(iocRead, 31, 1024)
)

func btrfsIoctl(dir string, req uintptr, arg []byte) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&arg[0])))
		if e != unix.EINTR {
			if e != 0 {
				return e
			}
			return nil
		}
	}
}

// btrfsDevices lists the devices of the btrfs mounted at dir: FS_INFO
// says the highest device id, DEV_INFO each id's node (ids of removed
// devices answer ENODEV).
func btrfsDevices(dir string) ([]MountDev, error) {
	info := make([]byte, 1024)
	if err := btrfsIoctl(dir, iocFSInfo, info); err != nil {
		return nil, fmt.Errorf("%s: BTRFS_IOC_FS_INFO: %w", dir, err)
	}
	maxID := binary.LittleEndian.Uint64(info[0:])
	if maxID > 1<<16 {
		return nil, fmt.Errorf("%s: btrfs says its highest device id is %d", dir, maxID)
	}
	var devs []MountDev
	for id := uint64(1); id <= maxID; id++ {
		a := make([]byte, btrfsArgSize)
		binary.LittleEndian.PutUint64(a[0:], id)
		err := btrfsIoctl(dir, iocDevInfo, a)
		if errors.Is(err, unix.ENODEV) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: BTRFS_IOC_DEV_INFO %d: %w", dir, id, err)
		}
		// path is the last 1024 bytes: after devid, uuid, bytes_used,
		// total_bytes and the reserved words.
		path := a[btrfsArgSize-1024:]
		if i := bytes.IndexByte(path, 0); i >= 0 {
			path = path[:i]
		}
		node := string(path)
		rdev, err := DeviceNumber(node)
		if err != nil {
			return nil, fmt.Errorf("%s: device %d: %w", dir, id, err)
		}
		devs = append(devs, MountDev{Node: node, Rdev: rdev, DevID: id})
	}
	if len(devs) == 0 {
		return nil, fmt.Errorf("%s: btrfs lists no device", dir)
	}
	return devs, nil
}

// btrfsDevSize is a device's size as the filesystem uses it.
func btrfsDevSize(dir string, id uint64) (uint64, error) {
	a := make([]byte, btrfsArgSize)
	binary.LittleEndian.PutUint64(a[0:], id)
	if err := btrfsIoctl(dir, iocDevInfo, a); err != nil {
		return 0, fmt.Errorf("%s: BTRFS_IOC_DEV_INFO %d: %w", dir, id, err)
	}
	return binary.LittleEndian.Uint64(a[32:]), nil // total_bytes
}

// ResizeBtrfs grows device id of the btrfs mounted at dir to the size of
// its partition ("<devid>:max", btrfs filesystem resize's argument) and
// returns the device's size before and after.
func ResizeBtrfs(dir string, id uint64) (before, after uint64, err error) {
	if before, err = btrfsDevSize(dir, id); err != nil {
		return 0, 0, err
	}
	a := make([]byte, btrfsArgSize)
	copy(a[8:], strconv.FormatUint(id, 10)+":max")
	if err := btrfsIoctl(dir, iocResize, a); err != nil {
		return before, 0, fmt.Errorf("%s: BTRFS_IOC_RESIZE %d:max: %w", dir, id, err)
	}
	after, err = btrfsDevSize(dir, id)
	return before, after, err
}
