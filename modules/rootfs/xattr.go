package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// A replaced file keeps the extended attributes of the file it replaces:
// its SELinux label (security.selinux), POSIX ACL (system.posix_acl_access)
// and any user.* or trusted.* attribute, as editing it in place would. The
// atomic write creates a new inode, which would otherwise start bare, and
// /etc/shadow without its label or an ACL an administrator granted is a
// broken or changed system. The SELinux pass of the engine later relabels
// what the run wrote from the policy; this only makes sure nothing is lost
// where it does not (no policy, or paths the policy does not cover).
//
// Attributes bound to the old content are not carried: a file capability
// (security.capability) would give new content privileges nobody granted
// it, and IMA/EVM signatures (security.ima, security.evm) would not verify.
var contentBoundXattrs = map[string]bool{
	"security.capability": true,
	"security.ima":        true,
	"security.evm":        true,
}

// copyXattrs copies every extended attribute of the regular file at from
// (not followed if a symlink: a replaced link passes nothing on) onto the
// open file to. A missing file, or a filesystem without xattrs, copies
// nothing.
func copyXattrs(from string, to *os.File) error {
	st, err := os.Lstat(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	names, err := listXattrs(from)
	if err != nil {
		if unsupportedXattr(err) {
			return nil
		}
		return fmt.Errorf("list xattrs of %s: %w", from, err)
	}
	for _, name := range names {
		if contentBoundXattrs[name] {
			continue
		}
		val, err := GetXattr(from, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("read xattr %s of %s: %w", name, from, err)
		}
		if err := setXattr(to, name, val); err != nil && !tolerableXattrError(name, err) {
			return fmt.Errorf("carry xattr %s of %s over: %w", name, from, err)
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, name := range strings.Split(string(buf[:n]), "\x00") {
			if name != "" {
				names = append(names, name)
			}
		}
		return names, nil
	}
}

// GetXattr reads the whole extended attribute name of p, not following a
// final symlink; a missing one is unix.ENODATA.
func GetXattr(p, name string) ([]byte, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// setXattr sets one attribute on the open file by descriptor, so nothing
// can swap the temporary file's path meanwhile.
func setXattr(f *os.File, name string, val []byte) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Fsetxattr(int(fd), name, val, 0) }); err != nil {
		return err
	}
	return serr
}

func unsupportedXattr(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP)
}

// tolerableXattrError lets an unprivileged run (tests, --root on a
// workstation copy) go on when it may not set a trusted.* or security.*
// attribute, as tolerableChownError does for owners; as root it fails. A
// label the host's loaded policy does not know (EINVAL, --root on an SELinux
// workstation) is left to the engine's relabel from the target's policy.
func tolerableXattrError(name string, err error) bool {
	switch {
	case unsupportedXattr(err):
		return true
	case name == "security.selinux" && errors.Is(err, unix.EINVAL):
		return true
	}
	return os.Geteuid() != 0 && errors.Is(err, unix.EPERM)
}
