package bootentry

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEncodeEFIString(t *testing.T) {
	got := EncodeEFIString("a-2.conf")
	want := []byte{7, 0, 0, 0, 'a', 0, '-', 0, '2', 0, '.', 0, 'c', 0, 'o', 0, 'n', 0, 'f', 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeEFIString = %v", got)
	}
	s, err := DecodeEFIString(got)
	if err != nil || s != "a-2.conf" {
		t.Errorf("DecodeEFIString = %q, %v", s, err)
	}
	if _, err := DecodeEFIString([]byte{7, 0, 0}); err == nil {
		t.Error("short variable accepted")
	}
}

// WriteEFIVar on a temporary file: the content is replaced in one write;
// where the file system supports attributes (and we may set them), an
// immutable file is written and stays immutable, like efivarfs variables.
func TestWriteEFIVar(t *testing.T) {
	p := filepath.Join(t.TempDir(), LoaderEntryDefaultVar)
	if err := WriteEFIVar(p, EncodeEFIString("x")); err == nil {
		t.Error("WriteEFIVar created a missing variable")
	}
	if err := os.WriteFile(p, EncodeEFIString("a much longer old value.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := EncodeEFIString("new.conf")
	if err := WriteEFIVar(p, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Errorf("content %q", got)
	}

	immutable, err := setImmutable(p, true)
	if err != nil {
		t.Skipf("immutable attribute not available here (%v): the ioctl path is not exercised", err)
	}
	t.Cleanup(func() { setImmutable(p, false) })
	if !immutable {
		t.Skip("immutable attribute did not stick")
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err == nil {
		t.Fatal("test setup: an immutable file was writable")
	}
	want = EncodeEFIString("third.conf")
	if err := WriteEFIVar(p, want); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Errorf("content %q", got)
	}
	if still, err := setImmutable(p, true); err != nil || !still {
		t.Errorf("immutable attribute not restored (%v)", err)
	}
}

// setImmutable sets or clears FS_IMMUTABLE_FL and reports whether it is set
// afterwards.
func setImmutable(p string, on bool) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return false, err
	}
	if on {
		flags |= fsImmutableFL
	} else {
		flags &^= fsImmutableFL
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags)); err != nil {
		return false, err
	}
	flags, err = unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	return flags&fsImmutableFL != 0, err
}
