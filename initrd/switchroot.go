package initrd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// The initramfs is a ramfs or tmpfs; refusing anything else keeps a mistaken
// `provision init` on an installed system from deleting it.
const (
	ramfsMagic = 0x858458f6
	tmpfsMagic = 0x01021994
)

// SwitchRoot makes newRoot the root and execs init in it, like busybox's
// switch_root: the initramfs' files are deleted first (their memory is not
// freed otherwise), without crossing into other mounts, then newRoot is moved
// onto / and chrooted into. It only returns on error.
func SwitchRoot(newRoot, init string, args, env []string) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return fmt.Errorf("switch_root: statfs /: %w", err)
	}
	if st.Type != ramfsMagic && st.Type != tmpfsMagic {
		return fmt.Errorf("switch_root: / is not an initramfs (filesystem type %#x)", st.Type)
	}
	// Check init before deleting anything: afterwards there is no way back.
	// Resolve it inside newRoot, as it will be resolved after the chroot
	// (/sbin/init is usually an absolute symlink).
	inRoot, err := securejoin.SecureJoin(newRoot, init)
	if err != nil {
		return fmt.Errorf("switch_root: %s: %w", init, err)
	}
	if fi, err := os.Stat(inRoot); err != nil {
		return fmt.Errorf("switch_root: init %s in %s: %w", init, newRoot, err)
	} else if fi.Mode()&0o111 == 0 || !fi.Mode().IsRegular() {
		return fmt.Errorf("switch_root: init %s in %s is not an executable file", init, newRoot)
	}
	if err := unix.Chdir(newRoot); err != nil {
		return fmt.Errorf("switch_root: chdir %s: %w", newRoot, err)
	}
	var rootSt, newSt unix.Stat_t
	if err := unix.Stat("/", &rootSt); err != nil {
		return fmt.Errorf("switch_root: stat /: %w", err)
	}
	if err := unix.Stat(".", &newSt); err != nil {
		return fmt.Errorf("switch_root: stat %s: %w", newRoot, err)
	}
	if rootSt.Dev == newSt.Dev {
		return fmt.Errorf("switch_root: %s is not a mount point", newRoot)
	}
	// Deletion errors are not fatal: a file we cannot delete costs memory,
	// not correctness.
	_ = DeleteTree("/", rootSt.Dev)
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("switch_root: move %s to /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("switch_root: chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("switch_root: chdir /: %w", err)
	}
	argv := append([]string{init}, args...)
	err = unix.Exec(init, argv, env)
	return fmt.Errorf("switch_root: exec %s: %w", init, err)
}

// DeleteTree removes everything below dir that lives on device dev. Other
// mounts (the new root among them) are not entered. dir itself is kept.
func DeleteTree(dir string, dev uint64) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return deleteBelow(fd, dev, dir)
}

// deleteBelow empties the directory open as fd (and closes it). Working on
// directory descriptors with *at calls keeps a renamed or replaced path from
// sending us somewhere else.
func deleteBelow(fd int, dev uint64, name string) error {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if st.Dev != dev {
				continue // another mount: the new root, /dev, /proc...
			}
			sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := deleteBelow(sub, dev, filepath.Join(name, n)); err != nil {
				errs = append(errs, err)
			}
			// A directory holding a mount point cannot be removed; that is fine.
			if err := unix.Unlinkat(fd, n, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EBUSY) {
				errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(name, n), err))
			}
			continue
		}
		if st.Dev != dev {
			continue
		}
		if err := unix.Unlinkat(fd, n, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Join(name, n), err))
		}
	}
	return errors.Join(errs...)
}
