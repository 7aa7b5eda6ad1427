package faithful

import (
	"errors"
	"fmt"
	"github.com/provision-dev/provision/modules/fstab"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Attached is a disk on a loop device with its partitions.
type Attached struct {
	Disk *Disk
	Loop string // the whole disk, /dev/loopN
	Root string // the root btrfs partition
	ESP  string // C, E: the vfat partition (read and write it with mtools)
	Var  string // F: the /var btrfs partition

	mu     sync.Mutex
	mounts []string // mounted by us, in order
}

// Attach puts the image on a loop device with partition scanning
// (losetup -P). A kernel without the table's parser gets the partitions
// from partx instead.
func (d *Disk) Attach() (*Attached, error) {
	out, err := run("losetup", "--show", "-f", "-P", d.Path)
	if err != nil {
		return nil, err
	}
	a := &Attached{Disk: d, Loop: strings.TrimSpace(out)}
	node := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("%sp%d", a.Loop, n)
	}
	a.Root, a.ESP, a.Var = node(d.RootPart), node(d.ESPPart), node(d.VarPart)
	last := node(len(d.Parts))
	if _, err := os.Stat(last); err != nil {
		if _, err := run("partx", "-u", a.Loop); err != nil {
			_ = a.Detach()
			return nil, err
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(last); err == nil {
			return a, nil
		}
		if time.Now().After(deadline) {
			_ = a.Detach()
			return nil, fmt.Errorf("faithful: %s: partition %s did not appear", d.Path, last)
		}
	}
}

// mount runs mount with args and dir as the target, creating dir, and
// records it for Detach. The returned function unmounts it.
func (a *Attached) mount(dir string, args ...string) (func() error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("mount", append(args, dir)...); err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.mounts = append(a.mounts, dir)
	a.mu.Unlock()
	var once sync.Once
	var uerr error
	return func() error {
		once.Do(func() { uerr = a.umount(dir) })
		return uerr
	}, nil
}

func (a *Attached) umount(dir string) error {
	if _, err := run("umount", dir); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.mounts) - 1; i >= 0; i-- {
		if a.mounts[i] == dir {
			a.mounts = append(a.mounts[:i], a.mounts[i+1:]...)
			break
		}
	}
	return nil
}

func roOpt(readOnly bool) string {
	if readOnly {
		return "ro"
	}
	return "rw"
}

// MountTop mounts the root filesystem's top level (subvolid=5) at dir.
func (a *Attached) MountTop(dir string, readOnly bool) (func() error, error) {
	return a.mount(dir, "-t", "btrfs", "-o", roOpt(readOnly)+",subvolid=5", a.Root)
}

// MountRoot mounts the root filesystem at dir as an initrd does: no
// subvol= option, so the btrfs default subvolume is what comes up.
func (a *Attached) MountRoot(dir string, readOnly bool) (func() error, error) {
	return a.mount(dir, "-t", "btrfs", "-o", roOpt(readOnly), a.Root)
}

// MountInitrd mounts the x-initrd.mount lines of sysroot/etc/fstab below
// sysroot, in fstab order, as systemd does in the initrd after
// initrd-parse-etc.service: /sysroot in the options becomes sysroot,
// x-* options are left to mount(8), UUID= names a partition of this disk.
// A bind-mounted /etc is remounted read-write afterwards, as
// writable-etc.service does. The returned function unmounts them all.
func (a *Attached) MountInitrd(sysroot string) (func() error, error) {
	b, err := os.ReadFile(filepath.Join(sysroot, "etc/fstab"))
	if err != nil {
		return nil, err
	}
	var undo []func() error
	unmountAll := func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	entries, err := fstab.Parse(filepath.Join(sysroot, "etc/fstab"), b)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if !e.HasOption("x-initrd.mount") {
			continue
		}
		var opts []string
		for _, o := range e.Options {
			opts = append(opts, strings.ReplaceAll(o, "/sysroot/", strings.TrimSuffix(sysroot, "/")+"/"))
		}
		src := e.Spec
		switch {
		case strings.HasPrefix(src, "UUID="):
			if src, err = a.deviceOf(strings.TrimPrefix(src, "UUID=")); err != nil {
				_ = unmountAll()
				return nil, err
			}
		case e.HasOption("bind"):
			src = filepath.Join(sysroot, src)
		}
		target := filepath.Join(sysroot, e.File)
		u, err := a.mount(target, "-t", e.VfsType, "-o", strings.Join(opts, ","), src)
		if err != nil {
			_ = unmountAll()
			return nil, err
		}
		undo = append(undo, u)
		if e.File == "/etc" && e.HasOption("bind") {
			if _, err := run("mount", "-o", "remount,rw", target); err != nil {
				_ = unmountAll()
				return nil, err
			}
		}
	}
	return unmountAll, nil
}

// deviceOf is the partition holding the filesystem with that UUID.
func (a *Attached) deviceOf(uuid string) (string, error) {
	d := a.Disk
	switch {
	case uuid == d.UUID:
		return a.Root, nil
	case uuid == d.VarUUID && d.VarUUID != "":
		return a.Var, nil
	case uuid == d.ESPUUID && d.ESPUUID != "":
		return a.ESP, nil
	}
	return "", fmt.Errorf("faithful: no filesystem with UUID %s on %s", uuid, d.Path)
}

// Detach unmounts what was mounted through a (last first), makes the
// kernel forget the btrfs devices and removes the loop device.
func (a *Attached) Detach() error {
	var errs []error
	a.mu.Lock()
	mounts := append([]string(nil), a.mounts...)
	a.mu.Unlock()
	for i := len(mounts) - 1; i >= 0; i-- {
		errs = append(errs, a.umount(mounts[i]))
	}
	for _, dev := range []string{a.Root, a.Var} {
		if dev == "" {
			continue
		}
		if _, err := os.Stat(dev); err == nil {
			// Without this the loop device stays half-attached after
			// losetup -d (microos-reality.md §7.2 step 13).
			// Best effort: a filesystem that still holds the name
			// (mounted in a mount namespace that is being torn down,
			// after a test's process exited) answers EBUSY; the loop
			// device goes all the same.
			_, _ = run("btrfs", "device", "scan", "--forget", dev)
		}
	}
	_, err := run("losetup", "-d", a.Loop)
	errs = append(errs, err)
	return errors.Join(errs...)
}
