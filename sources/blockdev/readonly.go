package blockdev

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// readOnly reports whether the block device dev is read-only (BLKROGET):
// write-protected, or a loop device or image attached read-only.
func readOnly(dev string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	ro, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKROGET)
	return err == nil && ro != 0
}

// ReadOnlyError is err, a read-write mount of dev refused, explained when
// dev is read-only: the kernel says EACCES for it, which reads like a
// permission problem.
func ReadOnlyError(dev string, err error) error {
	if !readOnly(dev) {
		return err
	}
	return fmt.Errorf("%s is a read-only device (write-protected, or a read-only loop or image): nothing can be provisioned on it: %w", dev, err)
}
