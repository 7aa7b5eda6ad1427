package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCheckPersistentPath(t *testing.T) {
	for p, bad := range map[string]bool{
		"/proc/sys/kernel/hostname": true, "/sys/x": true, "/dev/shm/x": true, "/dev": true,
		"/run/x": true, "/tmp/x": true, "//tmp/./x": true,
		"/etc/x": false, "/var/tmp/x": false, "/devices": false, "/tmpfiles": false, "/srv/run/x": false,
	} {
		err := CheckPersistentPath(p)
		if bad != (err != nil) || bad && !errors.Is(err, ErrForeignMount) {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestWritesStayOffForeignMounts: with a tmpfs on the tree's /tmp and a
// host directory bind-mounted on its /dev (as the chroot mounts them),
// every kind of write there is refused before anything happens and
// nothing is journaled; the tree's own directories and the agent's
// scratch directory take writes as before.
func TestWritesStayOffForeignMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs and a bind mount into the tree")
	}
	r, base := newRoot(t)
	host := filepath.Join(base, "hostdev")
	for _, d := range []string{host, filepath.Join(r.Dir, "dev"), filepath.Join(r.Dir, "tmp"), filepath.Join(r.Dir, "run")} {
		os.MkdirAll(d, 0o755)
	}
	mount := func(src, dst, fstype string, flags uintptr) {
		if err := unix.Mount(src, dst, fstype, flags, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(dst, unix.MNT_DETACH) })
	}
	mount("tmpfs", filepath.Join(r.Dir, "tmp"), "tmpfs", 0)
	mount("tmpfs", filepath.Join(r.Dir, "run"), "tmpfs", 0)
	mount(host, filepath.Join(r.Dir, "dev"), "", unix.MS_BIND)
	os.MkdirAll(filepath.Join(host, "shm"), 0o755)
	rec := &recorder{}
	r.Journal = rec
	for name, op := range map[string]func() error{
		"write /tmp":     func() error { return r.WriteFile("/tmp/x", []byte("x"), 0o644, Owner{-1, -1}) },
		"write /dev":     func() error { return r.WriteFile("/dev/evil", []byte("x"), 0o644, Owner{-1, -1}) },
		"append /dev":    func() error { return r.AppendFile("/dev/evil", []byte("x"), 0o644, Owner{-1, -1}) },
		"homedir /dev":   func() error { return r.MkdirAll("/dev/shm/alice", 0o700, Owner{-1, -1}) },
		"parents /dev":   func() error { return r.WriteFile("/dev/a/b/c", []byte("x"), 0o644, Owner{-1, -1}) },
		"symlink /dev":   func() error { return r.Symlink("/x", "/dev/l") },
		"chmod /dev/shm": func() error { return r.Chmod("/dev/shm", 0o777) },
		"remove /dev":    func() error { return r.Remove("/dev/shm") },
	} {
		if err := op(); !errors.Is(err, ErrForeignMount) {
			t.Errorf("%s: got %v, want ErrForeignMount", name, err)
		}
	}
	ents, _ := os.ReadDir(host)
	if len(ents) != 1 {
		t.Errorf("the host directory behind /dev changed: %v", ents)
	}
	if st, _ := os.Stat(filepath.Join(host, "shm")); st.Mode().Perm() != 0o755 {
		t.Errorf("chmod reached the host: %v", st.Mode())
	}
	if len(rec.paths) != 0 {
		t.Errorf("journaled: %v", rec.paths)
	}
	if err := r.WriteFile("/etc/ok", []byte("x"), 0o644, Owner{-1, -1}); err != nil {
		t.Error(err)
	}
	if err := r.WriteFile(ScratchDir+"/scripts/s", []byte("x"), 0o700, Owner{-1, -1}); err != nil {
		t.Errorf("the agent's scratch directory: %v", err)
	}
}

type recorder struct{ paths []string }

func (r *recorder) Preserve(p string) error { r.paths = append(r.paths, p); return nil }

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		p, dir string
		want   bool
	}{
		{"/etc/passwd", "/etc", true},
		{"/etc", "/etc", true},
		{"/etc/ssh/sshd_config", "/etc", true},
		{"/etcetera", "/etc", false},
		{"/et", "/etc", false},
		{"/var", "/etc", false},
		{"/anything", "/", true},
		{"/", "/", true},
	} {
		if got := within(c.p, c.dir); got != c.want {
			t.Errorf("within(%q, %q) = %v, want %v", c.p, c.dir, got, c.want)
		}
	}
}

// TestMountVerdictFollowsTheMount: what checkMount remembers of a mount it
// let writes onto (a disk's directory bound into the tree) does not carry
// over to a tmpfs mounted at the same point afterwards, though the kernel
// gives the new mount the freed mount id.
func TestMountVerdictFollowsTheMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: bind-mounts and mounts a tmpfs into the tree")
	}
	disk, err := os.MkdirTemp("/var/tmp", "rootfs-mounts-")
	if err != nil {
		t.Skip("no /var/tmp to bind from:", err)
	}
	t.Cleanup(func() { os.RemoveAll(disk) })
	var sfs unix.Statfs_t
	if err := unix.Statfs(disk, &sfs); err != nil || sfs.Type == unix.TMPFS_MAGIC || sfs.Type == unix.RAMFS_MAGIC {
		t.Skip("/var/tmp is not on a disk's filesystem here")
	}
	r, _ := newRoot(t)
	point := filepath.Join(r.Dir, "data")
	os.MkdirAll(point, 0o755)
	me := Owner{-1, -1}
	if err := unix.Mount(disk, point, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(point, unix.MNT_DETACH) })
	for _, name := range []string{"/data/a", "/data/b"} {
		if err := r.WriteFile(name, []byte("x"), 0o644, me); err != nil {
			t.Fatalf("%s on the bound disk directory: %v", name, err)
		}
	}
	bound, _ := mountID(point)
	if len(r.mountsOK) == 0 {
		t.Fatal("the verdict on the bound directory was not remembered")
	}
	if err := unix.Unmount(point, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", point, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	if now, _ := mountID(point); now == bound {
		t.Logf("the tmpfs got the freed mount id %d", now)
	}
	for _, name := range []string{"/data/c", "/data/d"} {
		if err := r.WriteFile(name, []byte("x"), 0o644, me); !errors.Is(err, ErrForeignMount) {
			t.Errorf("%s on the tmpfs: got %v, want ErrForeignMount", name, err)
		}
	}
}
