// Command dmctl is the power-loss test's stand-in for dmsetup inside the
// tier A initramfs, which has no libdevmapper: it speaks the device-mapper
// ioctls (linux/dm-ioctl.h, interface version 4) on /dev/mapper/control to
// put a log-writes target over a disk, send it marks and remove it. It is a
// test tool, built static by test/e2e; nothing ships it.
//
//	dmctl create NAME DATA LOG   prints the new device's node, /dev/dm-N
//	dmctl mark NAME TEXT         a MARK entry in the log
//	dmctl remove NAME            (flushes the log and writes its super)
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// struct dm_ioctl: 312 bytes, the name at 48, the uuid at 176.
const (
	ioctlSize   = 312
	nameOffset  = 48
	nameLen     = 128
	specSize    = 40 // struct dm_target_spec
	typeNameLen = 16
)

// The command numbers of enum dm_ioctl_cmd; the request is
// _IOWR(0xfd, cmd, struct dm_ioctl).
const (
	cmdDevCreate  = 3
	cmdDevRemove  = 4
	cmdDevSuspend = 6
	cmdTableLoad  = 9
	cmdTargetMsg  = 14
)

func request(cmd uintptr) uintptr {
	return 3<<30 | ioctlSize<<16 | 0xfd<<8 | cmd
}

// header is a struct dm_ioctl for name with payload after it.
func header(name string, payload []byte, targets uint32) ([]byte, error) {
	if len(name) >= nameLen || name == "" || strings.ContainsRune(name, 0) {
		return nil, fmt.Errorf("device name %q: want 1 to %d bytes", name, nameLen-1)
	}
	// The kernel copies data_size bytes back on return: room for a
	// reply (the status of a message) beyond what is sent.
	buf := make([]byte, ioctlSize+len(payload)+4096)
	le := binary.LittleEndian
	le.PutUint32(buf[0:], 4) // version 4.0.0: any 4.x kernel takes it
	le.PutUint32(buf[12:], uint32(len(buf)))
	le.PutUint32(buf[16:], ioctlSize)
	le.PutUint32(buf[20:], targets)
	copy(buf[nameOffset:], name)
	copy(buf[ioctlSize:], payload)
	return buf, nil
}

func call(ctl *os.File, cmd uintptr, buf []byte) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), request(cmd), uintptr(unsafe.Pointer(&buf[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

func sectors(dev string) (uint64, error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
	if err != nil {
		return 0, fmt.Errorf("%s: BLKGETSIZE64: %w", dev, err)
	}
	return size / 512, nil
}

func create(ctl *os.File, name, data, log string) error {
	n, err := sectors(data)
	if err != nil {
		return err
	}
	buf, err := header(name, nil, 0)
	if err != nil {
		return err
	}
	if err := call(ctl, cmdDevCreate, buf); err != nil {
		return fmt.Errorf("DM_DEV_CREATE %s: %w", name, err)
	}
	// huge_encode_dev: minor bits 0-7 and 20-31, major bits 8-19.
	dev := binary.LittleEndian.Uint64(buf[40:])
	minor := dev&0xff | (dev>>12)&^0xff
	params := []byte(data + " " + log + "\x00")
	spec := make([]byte, specSize, specSize+len(params)+8)
	binary.LittleEndian.PutUint64(spec[8:], n)
	copy(spec[24:24+typeNameLen], "log-writes")
	spec = append(spec, params...)
	for len(spec)%8 != 0 {
		spec = append(spec, 0)
	}
	if buf, err = header(name, spec, 1); err != nil {
		return err
	}
	if err := call(ctl, cmdTableLoad, buf); err != nil {
		return errors.Join(fmt.Errorf("DM_TABLE_LOAD log-writes %s %s: %w", data, log, err), remove(ctl, name))
	}
	// DM_DEV_SUSPEND without DM_SUSPEND_FLAG is a resume: the loaded
	// table becomes the live one.
	if buf, err = header(name, nil, 0); err != nil {
		return err
	}
	if err := call(ctl, cmdDevSuspend, buf); err != nil {
		return errors.Join(fmt.Errorf("resuming %s: %w", name, err), remove(ctl, name))
	}
	fmt.Printf("/dev/dm-%d\n", minor)
	return nil
}

func mark(ctl *os.File, name, text string) error {
	// struct dm_target_msg: the sector (0, the only target) and the text.
	msg := make([]byte, 8, 8+len(text)+16)
	msg = append(msg, "mark "+text+"\x00"...)
	buf, err := header(name, msg, 0)
	if err != nil {
		return err
	}
	if err := call(ctl, cmdTargetMsg, buf); err != nil {
		return fmt.Errorf("mark %q on %s: %w", text, name, err)
	}
	return nil
}

func remove(ctl *os.File, name string) error {
	buf, err := header(name, nil, 0)
	if err != nil {
		return err
	}
	if err := call(ctl, cmdDevRemove, buf); err != nil {
		return fmt.Errorf("DM_DEV_REMOVE %s: %w", name, err)
	}
	return nil
}

func main() {
	args := os.Args[1:]
	usage := func() {
		fmt.Fprintln(os.Stderr, "usage: dmctl create NAME DATA LOG | mark NAME TEXT | remove NAME")
		os.Exit(2)
	}
	if len(args) < 2 {
		usage()
	}
	ctl, err := os.OpenFile("/dev/mapper/control", os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dmctl:", err)
		os.Exit(1)
	}
	defer ctl.Close()
	switch {
	case args[0] == "create" && len(args) == 4:
		err = create(ctl, args[1], args[2], args[3])
	case args[0] == "mark" && len(args) == 3:
		err = mark(ctl, args[1], args[2])
	case args[0] == "remove" && len(args) == 2:
		err = remove(ctl, args[1])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dmctl:", err)
		os.Exit(1)
	}
}
