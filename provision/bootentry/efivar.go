package bootentry

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unicode/utf16"

	"golang.org/x/sys/unix"
)

// LoaderEntryDefaultVar is the efivarfs file name of systemd's
// LoaderEntryDefault variable (Boot Loader Interface vendor GUID).
const LoaderEntryDefaultVar = "LoaderEntryDefault-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"

// efiAttrs is NON_VOLATILE | BOOTSERVICE_ACCESS | RUNTIME_ACCESS, the
// little-endian 32-bit attribute word efivarfs expects before the data.
var efiAttrs = []byte{0x07, 0x00, 0x00, 0x00}

// fsImmutableFL is FS_IMMUTABLE_FL from <linux/fs.h>. efivarfs marks most
// variables immutable so that a stray write cannot brick the firmware.
const fsImmutableFL = 0x00000010

// EncodeEFIString is the efivarfs content of a string variable: the
// attribute word, then the string in UTF-16LE with a terminating NUL.
func EncodeEFIString(s string) []byte {
	b := append([]byte(nil), efiAttrs...)
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u), byte(u>>8))
	}
	return append(b, 0, 0)
}

// DecodeEFIString reverses EncodeEFIString: it skips the attribute word and
// reads UTF-16LE up to the first NUL.
func DecodeEFIString(b []byte) (string, error) {
	if len(b) < 4 || (len(b)-4)%2 != 0 {
		return "", fmt.Errorf("EFI string variable of %d bytes", len(b))
	}
	var u []uint16
	for i := 4; i+1 < len(b); i += 2 {
		c := uint16(b[i]) | uint16(b[i+1])<<8
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u)), nil
}

// WriteEFIVar replaces the contents of an existing efivarfs file with data
// (attribute word + value) in a single write, as efivarfs requires. An
// immutable attribute (chattr +i) is cleared for the write and set again
// afterwards; where the file system has no attribute ioctl the step is
// skipped. The file is never created.
func WriteEFIVar(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	immutable := false
	switch {
	case err == nil:
		immutable = flags&fsImmutableFL != 0
	case !attrUnsupported(err):
		return fmt.Errorf("%s: reading attributes: %w", path, err)
	}
	if immutable {
		if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL)); err != nil {
			return fmt.Errorf("%s: clearing the immutable attribute: %w", path, err)
		}
	}
	werr := writeOnce(path, data)
	if immutable {
		if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil && werr == nil {
			werr = fmt.Errorf("%s: restoring the immutable attribute: %w", path, err)
		}
	}
	return werr
}

func writeOnce(path string, data []byte) error {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	n, err := w.Write(data)
	if err == nil && n != len(data) {
		err = fmt.Errorf("short write (%d of %d bytes)", n, len(data))
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// attrUnsupported reports errors meaning "this file system has no
// FS_IOC_GETFLAGS" (tmpfs on older kernels, overlayfs, FUSE, ...).
func attrUnsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)
}
