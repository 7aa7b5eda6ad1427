package blockdev

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Mounter makes a filesystem readable as a directory. Open uses it for the
// filesystems go-diskfs cannot read (ext2/3/4, btrfs, xfs).
type Mounter interface {
	// Mount mounts v read-only and returns the directory and a function that
	// undoes everything Mount did.
	Mount(ctx context.Context, v Volume) (dir string, unmount func() error, err error)
}

// KernelMounter mounts through the kernel: read-only, nosuid, nodev, noexec,
// on a fresh directory under TempDir (os.TempDir() when empty). An image file
// or a partition inside one is first attached to a read-only loop device.
type KernelMounter struct {
	TempDir string
}

// Mount implements Mounter.
func (k KernelMounter) Mount(ctx context.Context, v Volume) (string, func() error, error) {
	if os.Geteuid() != 0 {
		return "", nil, ErrNeedsRoot
	}
	var undo []func() error
	cleanup := func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	dev := v.File
	st, err := os.Stat(v.File)
	if err != nil {
		return "", nil, err
	}
	if st.Mode()&os.ModeDevice == 0 || v.Offset != 0 {
		loop, detach, err := attachLoop(v.File, v.Offset, v.Size)
		if err != nil {
			return "", nil, fmt.Errorf("attach loop device: %w", err)
		}
		undo = append(undo, detach)
		dev = loop
	}
	dir, err := os.MkdirTemp(k.TempDir, "provision-medium-")
	if err != nil {
		_ = cleanup()
		return "", nil, err
	}
	undo = append(undo, func() error { return os.Remove(dir) })
	fstypes := []string{v.Type}
	if v.Type == TypeExt2 || v.Type == TypeExt3 {
		// Kernels built without the ext2/ext3 names mount both with ext4.
		fstypes = append(fstypes, TypeExt4)
	}
	const flags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, t := range fstypes {
		if err = unix.Mount(dev, dir, t, flags, ""); err == nil {
			break
		}
	}
	if err != nil {
		_ = cleanup()
		return "", nil, fmt.Errorf("mount %s (%s) read-only: %w", dev, v.Type, err)
	}
	undo = append(undo, func() error {
		if err := unix.Unmount(dir, 0); err != nil {
			// Busy (a reader still open): detach so nothing stays mounted.
			return unix.Unmount(dir, unix.MNT_DETACH)
		}
		return nil
	})
	return dir, cleanup, nil
}

// attachLoop binds bytes [offset, offset+size) of path to a free loop device,
// read-only and auto-clearing (the kernel detaches it once unmounted and
// closed).
func attachLoop(path string, offset, size int64) (string, func() error, error) {
	backing, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()
	// Another process may take the free device between GET_FREE and
	// CONFIGURE (EBUSY): try a few times.
	for attempt := 0; attempt < 5; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		lf, err := os.OpenFile(dev, os.O_RDONLY, 0)
		if err != nil {
			return "", nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Offset = uint64(offset)
		cfg.Info.Sizelimit = uint64(size)
		cfg.Info.Flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR
		copy(cfg.Info.File_name[:], filepath.Base(path))
		err = unix.IoctlLoopConfigure(int(lf.Fd()), &cfg)
		if err == nil {
			return dev, lf.Close, nil
		}
		lf.Close()
		if !errors.Is(err, unix.EBUSY) {
			return "", nil, fmt.Errorf("LOOP_CONFIGURE %s: %w", dev, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "", nil, errors.New("no free loop device")
}
