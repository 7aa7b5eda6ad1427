// Package targetimage opens the target a dry run or a validation plans
// against: a directory as it is, or a disk image (raw, whole filesystem or
// partitioned) whose root filesystem the kernel mounts read-only. A btrfs
// root is mounted as a boot would see it: its default subvolume, the
// snapshot that boots.
package targetimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/provision-dev/provision/sources/blockdev"
)

// ErrNeedsRoot is wrapped by the error for an image opened without root.
var ErrNeedsRoot = errors.New("a disk image is mounted read-only with a loop device, which needs root: run as root, or give the image's root tree as a directory")

// rootTypes are the filesystems an OS root can be on.
var rootTypes = map[string]bool{
	blockdev.TypeBtrfs: true, blockdev.TypeExt4: true, blockdev.TypeExt3: true,
	blockdev.TypeExt2: true, blockdev.TypeXFS: true,
}

// Open returns a directory holding the target's root tree and a function
// that releases it. A directory is returned as it is; a regular file or
// block device is scanned for filesystems, and the first one that holds an
// OS tree (/usr and /etc) is mounted read-only.
func Open(ctx context.Context, path string) (string, func() error, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("--root %s: %w", path, err)
	}
	if st.IsDir() {
		return path, func() error { return nil }, nil
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
		return "", nil, fmt.Errorf("--root %s: neither a directory nor a disk image", path)
	}
	vols, err := blockdev.ScanImage(path)
	if err != nil {
		return "", nil, fmt.Errorf("--root %s: reading the disk image: %w", path, err)
	}
	var candidates []blockdev.Volume
	var seen []string
	for _, v := range vols {
		seen = append(seen, v.Name+" ("+v.Type+")")
		if rootTypes[v.Type] {
			candidates = append(candidates, v)
		}
	}
	if len(candidates) == 0 {
		return "", nil, fmt.Errorf("--root %s: no filesystem that can hold a root (btrfs, ext4, xfs) in the image; found: %v", path, seen)
	}
	if os.Geteuid() != 0 {
		return "", nil, fmt.Errorf("--root %s: %w", path, ErrNeedsRoot)
	}
	var errs []error
	for _, v := range candidates {
		dir, release, err := blockdev.KernelMounter{}.Mount(ctx, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", v.Name, err))
			continue
		}
		if isOSTree(dir) {
			return dir, release, nil
		}
		errs = append(errs, fmt.Errorf("%s (%s): no /usr and /etc on it", v.Name, v.Type))
		if err := release(); err != nil {
			errs = append(errs, err)
		}
	}
	return "", nil, fmt.Errorf("--root %s: no root tree found in the image: %w", path, errors.Join(errs...))
}

// isOSTree: a root has /usr and /etc (a separate /var or ESP has not).
func isOSTree(dir string) bool {
	for _, d := range []string{"usr", "etc"} {
		st, err := os.Stat(filepath.Join(dir, d))
		if err != nil || !st.IsDir() {
			return false
		}
	}
	return true
}
