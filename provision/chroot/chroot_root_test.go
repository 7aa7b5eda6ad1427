package chroot_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/scripts"
	"github.com/provision-dev/provision/modules/scripts/process"
	"github.com/provision-dev/provision/provision/chroot"
	"github.com/provision-dev/provision/provision/config"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount, chroot)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) for the test tree")
	}
}

var applets = []string{"sh", "echo", "sleep", "cat", "pwd", "env", "ls", "grep", "test", "true", "false", "touch", "mkdir"}

// tinyTree makes a root with a static busybox as /bin/sh and friends.
func tinyTree(t *testing.T, dir string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	for _, d := range []string{"bin", "etc", "root", "var"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mountsUnder lists mount points at or below dir in this namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == real || strings.HasPrefix(f[4], real+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

func checkNoMounts(t *testing.T, dir string, allowed int) {
	t.Helper()
	if m := mountsUnder(t, dir); len(m) != allowed {
		t.Fatalf("mounts left below %s: %v", dir, m)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func setup(t *testing.T, dir string, opts chroot.Options) *chroot.Env {
	t.Helper()
	env, err := chroot.Setup(context.Background(), dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

func TestRunInTree(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoFstab: true})
	var out syncBuf
	code, err := env.Run(context.Background(), modules.Command{
		Argv: []string{"sh", "-c", `echo "$PATH|$LANG|$FOO"; pwd; ` +
			`grep -q ' /run tmpfs' /proc/self/mounts && echo run-tmpfs; ` +
			`grep -q ' /tmp tmpfs' /proc/self/mounts && echo tmp-tmpfs; ` +
			`echo x > /dev/null && test -d /sys/kernel && echo api-ok; ` +
			`test -e /bin/busybox && echo in-tree; exit 7`},
		Dir:    "/etc",
		Env:    []string{"FOO=bar", "LANG=en_US.UTF-8"},
		Output: &out,
	})
	if err != nil || code != 7 {
		t.Fatalf("got (%d, %v); output:\n%s", code, err, out.String())
	}
	want := "/usr/sbin:/usr/bin:/sbin:/bin|en_US.UTF-8|bar\n/etc\nrun-tmpfs\ntmp-tmpfs\napi-ok\nin-tree\n"
	if out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	if _, err := env.Run(context.Background(), modules.Command{Argv: []string{"no-such-program"}}); err == nil ||
		!strings.Contains(err.Error(), "not found in the target's PATH") {
		t.Fatalf("missing program: %v", err)
	}
	if len(env.OutsideSnapshot()) != 0 {
		t.Fatalf("no fstab, but outside mounts %v", env.OutsideSnapshot())
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoMounts(t, dir, 0)
	if _, err := env.Run(context.Background(), modules.Command{Argv: []string{"true"}}); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

func TestTimeoutAndSignal(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoFstab: true, Timeout: 300 * time.Millisecond, KillGrace: 100 * time.Millisecond})
	_, err := env.Run(context.Background(), modules.Command{Argv: []string{"sleep", "1000"}})
	if !errors.Is(err, process.ErrTimeout) {
		t.Fatalf("got %v, want a timeout", err)
	}
	_, err = env.Run(context.Background(), modules.Command{Argv: []string{"sh", "-c", "kill -KILL $$"}})
	if err == nil || !strings.Contains(err.Error(), "signal 9") {
		t.Fatalf("got %v, want a signal error", err)
	}
}

func TestLeftoverProcessKilledAtClose(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoFstab: true})
	var out syncBuf
	// setsid-like escape from the group is not needed: the group is not
	// killed after a normal exit, only the Close sweep finds the child.
	code, err := env.Run(context.Background(), modules.Command{
		Argv:   []string{"sh", "-c", "sleep 1000 >/dev/null 2>&1 </dev/null & echo $!"},
		Output: &out,
	})
	if err != nil || code != 0 {
		t.Fatalf("got (%d, %v)", code, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("pid %q", out.String())
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("background process %d not running before Close: %v", pid, err)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/root"); err == nil {
		t.Fatalf("process %d survived Close (root %s)", pid, link)
	}
	checkNoMounts(t, dir, 0)
}

func TestCombustionScriptInChroot(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoFstab: true, SnapshotPath: "/.snapshots/2/snapshot"})
	root, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := "#!/bin/sh\n# combustion: network\n" +
		`echo "cwd=$(pwd)"` + "\n" +
		`echo "tu=$TRANSACTIONAL_UPDATE root=$TRANSACTIONAL_UPDATE_ROOT lang=$LANG provision=$PROVISION"` + "\n" +
		"cat ./files/motd\n" +
		"echo configured > /etc/motd\n" +
		"exit ${EXIT:-0}\n"
	cfg := &config.Config{Scripts: []config.Script{{
		Kind: config.ScriptCombustion, Body: []byte(body), NeedsNetwork: true,
		Files:  map[string][]byte{"files/motd": []byte("from the stick\n")},
		Origin: config.Origin{Source: "drive:/dev/sdb1", File: "combustion/script"},
	}}}
	steps, err := scripts.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	var console syncBuf
	menv := &modules.Env{Root: root, Console: &console, Exec: env}
	if err := steps[0].Apply(context.Background(), menv); err != nil {
		t.Fatalf("%v\n%s", err, console.String())
	}
	want := "[combustion] cwd=/run/provision/combustion\n" +
		"[combustion] tu=true root=/.snapshots/2/snapshot lang=C provision=1\n" +
		"[combustion] from the stick\n"
	if console.String() != want {
		t.Fatalf("console %q, want %q", console.String(), want)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "etc/motd")); string(data) != "configured\n" {
		t.Fatalf("/etc/motd = %q", data)
	}

	cfg.Scripts[0].Body = []byte("#!/bin/sh\necho failing\nexit 3\n")
	steps, _ = scripts.Plan(cfg, root)
	err = steps[0].Apply(context.Background(), menv)
	if err == nil || err.Error() != "drive:/dev/sdb1:combustion/script: combustion script exited with status 3" {
		t.Fatalf("got %v", err)
	}
}

func TestRuncmdInChroot(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	env := setup(t, dir, chroot.Options{NoFstab: true})
	root, _ := rootfs.New(dir)
	cfg := &config.Config{Scripts: []config.Script{
		{Kind: config.ScriptRuncmd, Argv: []string{"touch", "/root/it's here"}},
		{Kind: config.ScriptRuncmd, Body: []byte(`echo "$(ls /root)"`)},
	}}
	steps, err := scripts.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	var console syncBuf
	if err := steps[0].Apply(context.Background(), &modules.Env{Root: root, Console: &console, Exec: env}); err != nil {
		t.Fatal(err)
	}
	if console.String() != "[runcmd] it's here\n" {
		t.Fatalf("console %q", console.String())
	}
}

func TestSetupFailureLeavesNoMounts(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	os.WriteFile(filepath.Join(dir, "etc/fstab"), []byte("UUID=00000000-dead-beef-0000-000000000000 /home ext4 defaults 0 2\n"), 0o644)
	_, err := chroot.Setup(context.Background(), dir, chroot.Options{})
	if err == nil || !strings.Contains(err.Error(), "/etc/fstab:1: /home") {
		t.Fatalf("got %v", err)
	}
	checkNoMounts(t, dir, 0)
}

// TestSymlinkedMountPointStaysInside: a mount point that is an absolute
// symlink in the target is resolved inside the tree, never on the host.
func TestSymlinkedMountPointStaysInside(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	hostDir, err := os.MkdirTemp("/var/tmp", "provision-host-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(hostDir)
	if err := os.Symlink(hostDir, filepath.Join(dir, "tmp")); err != nil {
		t.Fatal(err)
	}
	env := setup(t, dir, chroot.Options{NoFstab: true})
	checkNoMounts(t, hostDir, 0)
	inside := filepath.Join(dir, hostDir)
	if m := mountsUnder(t, inside); len(m) != 1 {
		t.Fatalf("/tmp not mounted inside the tree at %s: %v", inside, m)
	}
	env.Close()
	checkNoMounts(t, dir, 0)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestBtrfsSubvolumesFromFstab: /home and /var, top-level subvolumes of the root's
// own filesystem named by UUID= and LABEL=, get mounted from the root's
// device (no udev here: the lookup goes through /sys/fs/btrfs).
func TestBtrfsSubvolumesFromFstab(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("needs mkfs.btrfs")
	}
	work := t.TempDir()
	img := filepath.Join(work, "root.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 160<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "mkfs.btrfs", "-q", "-L", "provtest", img)
	top := filepath.Join(work, "top")
	tree := filepath.Join(work, "tree")
	os.Mkdir(top, 0o755)
	os.Mkdir(tree, 0o755)
	run(t, "mount", "-o", "loop", img, top)
	t.Cleanup(func() { exec.Command("umount", top).Run() })
	for _, sv := range []string{"@", "@home", "@var"} {
		run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(top, sv))
	}
	dev := strings.TrimSpace(run(t, "findmnt", "-n", "-o", "SOURCE", top))
	uuid := strings.TrimSpace(run(t, "findmnt", "-n", "-o", "UUID", top))
	if uuid == "" {
		out, _ := exec.Command("btrfs", "filesystem", "show", top).Output()
		t.Skipf("no uuid from findmnt: %s", out)
	}
	run(t, "mount", "-o", "subvol=@", dev, tree)
	t.Cleanup(func() { exec.Command("umount", tree).Run() })
	tinyTree(t, tree)
	os.MkdirAll(filepath.Join(tree, "home"), 0o755)
	fstab := "UUID=" + uuid + " / btrfs ro 0 0\n" +
		"UUID=" + uuid + " /home btrfs subvol=/@home 0 0\n" +
		"LABEL=provtest /var btrfs subvol=/@var,x-initrd.mount 0 0\n"
	os.WriteFile(filepath.Join(tree, "etc/fstab"), []byte(fstab), 0o644)

	before := len(mountsUnder(t, tree))
	env := setup(t, tree, chroot.Options{})
	code, err := env.Run(context.Background(), modules.Command{Argv: []string{"sh", "-c", "echo hi > /home/file && echo v > /var/file"}})
	if err != nil || code != 0 {
		t.Fatalf("got (%d, %v)", code, err)
	}
	outside := env.OutsideSnapshot()
	want := []string{filepath.Join(tree, "home"), filepath.Join(tree, "var")}
	if strings.Join(outside, ",") != strings.Join(want, ",") {
		t.Fatalf("outside mounts %v, want %v", outside, want)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	checkNoMounts(t, tree, before)
	// The writes landed in the subvolumes, not in the snapshot's directories.
	if data, _ := os.ReadFile(filepath.Join(top, "@home/file")); string(data) != "hi\n" {
		t.Fatalf("@home/file = %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(top, "@var/file")); string(data) != "v\n" {
		t.Fatalf("@var/file = %q", data)
	}
	if _, err := os.Stat(filepath.Join(tree, "home/file")); err == nil {
		t.Fatal("write went into the snapshot's /home")
	}
}

// A tree without /proc, /sys, /dev, /run and /tmp gets them as mount points
// for the run and loses them again at Close, with the root's times restored:
// the journal backend promises the old root back byte for byte.
func TestCreatedMountPointsRemovedAtClose(t *testing.T) {
	requireRoot(t)
	dir := tinyTree(t, "")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	env, err := chroot.Setup(context.Background(), dir, chroot.Options{NoFstab: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "proc/self")); err != nil {
		t.Fatalf("/proc not mounted in the tree: %v", err)
	}
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp"} {
		if _, err := os.Lstat(filepath.Join(dir, d)); err == nil {
			t.Errorf("/%s left behind", d)
		}
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(old) {
		t.Errorf("root mtime %v, want %v", st.ModTime(), old)
	}
}
