package users

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/provision/config"
)

// testACL is "setfacl -m u:4321:r" on a 0644 file, as the kernel stores it
// in system.posix_acl_access (version 2; tag, perm, id per entry).
func testACL() []byte {
	const undefined = 0xFFFFFFFF
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{0x01, 6, undefined}, {0x02, 4, 4321}, {0x04, 4, undefined}, {0x10, 4, undefined}, {0x20, 4, undefined}} {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// TestAccountFilesKeepXattrs: creating a user rewrites passwd, shadow,
// group and gshadow (and the sudoers drop-in); each keeps the user xattr
// and ACL it had.
func TestAccountFilesKeepXattrs(t *testing.T) {
	files := map[string]string{"etc/sudoers.d/90-provision-users": "# old\n"}
	for k, v := range baseTree {
		files[k] = v
	}
	r := tree(t, files)
	paths := []string{"etc/passwd", "etc/shadow", "etc/group", "etc/gshadow", "etc/sudoers.d/90-provision-users"}
	acl := testACL()
	for _, p := range paths {
		h := filepath.Join(r.Dir, p)
		for name, val := range map[string][]byte{"user.test": []byte("kept:" + p), "system.posix_acl_access": acl} {
			if err := unix.Lsetxattr(h, name, val, 0); err != nil {
				if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
					t.Skipf("the test directory's filesystem cannot hold %s: %v", name, err)
				}
				t.Fatal(err)
			}
		}
	}
	cfg := &config.Config{Users: []config.User{{Origin: origin, Name: "alice", Sudo: []string{"ALL=(ALL) NOPASSWD:ALL"},
		Password: config.Password{Kind: config.PasswordPlain, Value: "pw"}}}}
	steps, err := plan(cfg, r, func() time.Time { return day })
	must(t, err)
	apply(t, r, steps)
	if !strings.Contains(read(t, r, "/etc/passwd"), "\nalice:") || !strings.Contains(read(t, r, "/etc/sudoers.d/90-provision-users"), "alice") {
		t.Fatal("user or sudo rule not written")
	}
	for _, p := range paths {
		h := filepath.Join(r.Dir, p)
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(h, "user.test", buf)
		if err != nil || string(buf[:n]) != "kept:"+p {
			t.Errorf("%s: user.test %q, %v", p, buf[:max(n, 0)], err)
		}
		n, err = unix.Lgetxattr(h, "system.posix_acl_access", buf)
		if err != nil || !strings.Contains(string(buf[:max(n, 0)]), string(acl[12:20])) {
			t.Errorf("%s: ACL lost (%x, %v)", p, buf[:max(n, 0)], err)
		}
	}
}
