package provision

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/sources/dir"
)

// TestCommittedRunKeepsAccountFileXattrs: a committed run that adds a user
// rewrites the account databases; the user xattr each carried before (an
// SELinux label or ACL travels the same way) is still on the new file.
func TestCommittedRunKeepsAccountFileXattrs(t *testing.T) {
	root := newTarget(t)
	files := []string{"etc/passwd", "etc/shadow", "etc/group", "etc/gshadow"}
	for _, p := range files {
		h := filepath.Join(root, p)
		if _, err := os.Stat(h); err != nil {
			t.Fatalf("base tree lacks %s: %v", p, err)
		}
		if err := unix.Lsetxattr(h, "user.test", []byte(p), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				t.Skipf("no user xattrs here: %v", err)
			}
			t.Fatal(err)
		}
	}
	res := runOn(root, dir.New(seedDir(t, "#cloud-config\nusers:\n  - name: alice\n    plain_text_passwd: pw\n    lock_passwd: false\n")))
	if res.Err != nil || res.Status != StatusDone {
		t.Fatalf("run: %q %v", res.Status, res.Err)
	}
	for _, p := range files {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, p), "user.test", buf)
		if err != nil || string(buf[:n]) != p {
			t.Errorf("%s: user.test %q, %v", p, buf[:max(n, 0)], err)
		}
	}
}
