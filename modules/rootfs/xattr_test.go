package rootfs

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// aclWithUser is a system.posix_acl_access value (the kernel's xattr
// format, version 2) granting uid read besides the owner, group and
// others of mode 0644: what "setfacl -m u:UID:r" leaves.
func aclWithUser(uid uint32) []byte {
	const undefined = 0xFFFFFFFF
	entries := []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, undefined}, {0x02, 4, uid}, {0x04, 4, undefined}, {0x10, 4, undefined}, {0x20, 4, undefined}}
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// aclNamesUser reports whether an ACL value has a named-user entry for uid.
func aclNamesUser(v []byte, uid uint32) bool {
	for i := 4; i+8 <= len(v); i += 8 {
		if binary.LittleEndian.Uint16(v[i:]) == 0x02 && binary.LittleEndian.Uint32(v[i+4:]) == uid {
			return true
		}
	}
	return false
}

func setOrSkip(t *testing.T, p, name string, val []byte) {
	t.Helper()
	if err := unix.Lsetxattr(p, name, val, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			t.Skipf("the test directory's filesystem cannot hold %s: %v", name, err)
		}
		t.Fatal(err)
	}
}

func xattr(t *testing.T, p, name string) []byte {
	t.Helper()
	v, err := GetXattr(p, name)
	if err != nil {
		t.Errorf("%s on %s: %v", name, p, err)
	}
	return v
}

// TestReplacedFileKeepsXattrs: an atomic WriteFile or AppendFile over a file
// with a user xattr and an ACL leaves both on the new inode; the mode asked
// for still wins over the ACL's mask, as chmod does.
func TestReplacedFileKeepsXattrs(t *testing.T) {
	r, _ := newRoot(t)
	host := filepath.Join(r.Dir, "etc/passwd")
	if err := os.WriteFile(host, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	setOrSkip(t, host, "user.test", []byte("kept"))
	setOrSkip(t, host, "system.posix_acl_access", aclWithUser(4321))
	if err := r.WriteFile("/etc/passwd", []byte("root:x:0:0::/root:/bin/bash\n"), 0o640, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if err := r.AppendFile("/etc/passwd", []byte("a:x:1:1::/:/bin/sh\n"), 0, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if v := xattr(t, host, "user.test"); string(v) != "kept" {
		t.Errorf("user.test = %q", v)
	}
	if v := xattr(t, host, "system.posix_acl_access"); !aclNamesUser(v, 4321) {
		t.Errorf("ACL lost: %x", v)
	}
	st, _ := os.Stat(host)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode())
	}
	data, _ := os.ReadFile(host)
	if string(data) != "root:x:0:0::/root:/bin/bash\na:x:1:1::/:/bin/sh\n" {
		t.Errorf("content %q", data)
	}
}

// TestContentBoundXattrsNotCarried: a file capability of the old content
// must not give the new content privileges.
func TestContentBoundXattrsNotCarried(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting security.capability needs root")
	}
	r, _ := newRoot(t)
	host := filepath.Join(r.Dir, "etc/tool")
	if err := os.WriteFile(host, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	// VFS_CAP_REVISION_2 with cap_net_raw (13) permitted and effective.
	capv := make([]byte, 20)
	binary.LittleEndian.PutUint32(capv[0:], 0x02000001)
	binary.LittleEndian.PutUint32(capv[4:], 1<<13)
	setOrSkip(t, host, "security.capability", capv)
	setOrSkip(t, host, "user.keep", []byte("1"))
	if err := r.WriteFile("/etc/tool", []byte("new"), 0o755, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := GetXattr(host, "security.capability"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("security.capability carried over (%v)", err)
	}
	if v := xattr(t, host, "user.keep"); string(v) != "1" {
		t.Errorf("user.keep = %q", v)
	}
}

// TestReplacedSymlinkPassesNothing: WriteFile replaces a final symlink, and
// the file it pointed to keeps its attributes to itself.
func TestReplacedSymlinkPassesNothing(t *testing.T) {
	r, _ := newRoot(t)
	other := filepath.Join(r.Dir, "etc/other")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	setOrSkip(t, other, "user.test", []byte("x"))
	if err := os.Symlink("other", filepath.Join(r.Dir, "etc/link")); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/etc/link", []byte("y"), 0o644, Owner{-1, -1}); err != nil {
		t.Fatal(err)
	}
	if _, err := GetXattr(filepath.Join(r.Dir, "etc/link"), "user.test"); !errors.Is(err, unix.ENODATA) {
		t.Errorf("a replaced symlink passed its target's xattr on (%v)", err)
	}
}
