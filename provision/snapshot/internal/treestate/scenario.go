package treestate

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules/rootfs"
)

// Populate builds a small system-like tree in dir: files with odd modes and
// owners, xattrs, symlinks, directories, old mtimes.
func Populate(dir string) error {
	old := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	files := []struct {
		path, data string
		mode       os.FileMode
		uid, gid   int
	}{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644, 0, 0},
		{"etc/shadow", "root:*:19000:0:99999:7:::\n", 0o640, 0, 42},
		{"etc/hostname", "localhost\n", 0o644, 0, 0},
		{"usr/bin/su", "\x7fELF not really", 0o4755, 0, 0},
		{"home/alice/.profile", "export A=1\n", 0o600, 1000, 1000},
		{"var/log/messages", "boot\n", 0o640, 0, 4},
		{"etc/motd", "hello\n", 0o644, 0, 0},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
			return err
		}
		if err := os.Lchown(p, f.uid, f.gid); err != nil && os.Geteuid() == 0 {
			return err
		}
		if err := os.Chmod(p, f.mode|modeBits(f.mode)); err != nil {
			return err
		}
	}
	// xattrs are "if cheap": skip silently on filesystems without them.
	unix.Lsetxattr(filepath.Join(dir, "etc/shadow"), "user.provision-test", []byte("kept"), 0)
	if err := os.Symlink("../usr/share/zoneinfo/UTC", filepath.Join(dir, "etc/localtime")); err != nil {
		return err
	}
	if err := os.Symlink("/etc/motd", filepath.Join(dir, "etc/motd.link")); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, "etc/empty.d"), 0o750); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(dir, "home/alice"), 0o700); err != nil {
		return err
	}
	// Times last, deepest first, so creating children does not move them.
	var paths []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	for i := len(paths) - 1; i >= 0; i-- {
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

func modeBits(m os.FileMode) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	return out
}

// Change makes every kind of change a module makes, through rootfs (so the
// journal sees it): replace, append, create in new directories, symlink
// replace and create, chmod, chown, remove a file and an empty directory.
func Change(r *rootfs.Root) error {
	steps := []func() error{
		func() error { return r.WriteFile("/etc/hostname", []byte("node1\n"), 0o644, rootfs.RootOwner) },
		func() error {
			return r.AppendFile("/etc/passwd", []byte("alice:x:1000:1000::/home/alice:/bin/sh\n"), 0, rootfs.Owner{UID: -1, GID: -1})
		},
		func() error {
			return r.WriteFile("/etc/ssh/sshd_config.d/50-provision.conf", []byte("PasswordAuthentication no\n"), 0o600, rootfs.RootOwner)
		},
		func() error { return r.MkdirAll("/home/bob/.ssh", 0o700, rootfs.Owner{UID: 1001, GID: 1001}) },
		func() error {
			return r.WriteFile("/home/bob/.ssh/authorized_keys", []byte("ssh-ed25519 AAAA bob\n"), 0o600, rootfs.Owner{UID: 1001, GID: 1001})
		},
		func() error { return r.Symlink("../usr/share/zoneinfo/Europe/Berlin", "/etc/localtime") },
		func() error { return r.Symlink("/dev/null", "/etc/systemd/system/foo.service") },
		func() error { return r.Chmod("/usr/bin/su", 0o755) },
		func() error { return r.Chown("/etc/shadow", rootfs.Owner{UID: 0, GID: 0}) },
		func() error { return r.Remove("/etc/motd") },
		func() error { return r.Remove("/etc/empty.d") },
		func() error {
			return r.WriteFile("/var/log/messages", []byte("boot\nprovisioned\n"), 0o640, rootfs.Owner{UID: 0, GID: 4})
		},
	}
	for i, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
	}
	return nil
}

// CheckChanged verifies that every change of Change is present in dir.
func CheckChanged(dir string) error {
	want := map[string]string{
		"etc/hostname": "node1\n",
		"etc/ssh/sshd_config.d/50-provision.conf": "PasswordAuthentication no\n",
		"home/bob/.ssh/authorized_keys":           "ssh-ed25519 AAAA bob\n",
		"var/log/messages":                        "boot\nprovisioned\n",
	}
	for p, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(got) != w {
			return fmt.Errorf("%s: %q, %v (want %q)", p, got, err, w)
		}
	}
	if t, err := os.Readlink(filepath.Join(dir, "etc/localtime")); err != nil || t != "../usr/share/zoneinfo/Europe/Berlin" {
		return fmt.Errorf("etc/localtime -> %q, %v", t, err)
	}
	for _, gone := range []string{"etc/motd", "etc/empty.d"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			return fmt.Errorf("%s still there", gone)
		}
	}
	st, err := os.Stat(filepath.Join(dir, "usr/bin/su"))
	if err != nil || st.Mode()&os.ModeSetuid != 0 {
		return fmt.Errorf("usr/bin/su mode %v, %v", st.Mode(), err)
	}
	return nil
}
