package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The VM tier is slow (about 10 s a boot) and needs root, loop devices,
// qemu and Debian's apt: it runs only when asked.
const gateEnv = "PROVISION_E2E"

type world struct {
	kernel  *Kernel
	initrd  string
	busybox string
	binary  string
	err     error
}

var (
	setupOnce sync.Once
	shared    world
	workDir   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workDir != "" {
		os.RemoveAll(workDir)
	}
	os.Exit(code)
}

// needTools returns why the tier cannot run here, or "".
func needTools() string {
	if os.Getenv(gateEnv) != "1" {
		return "VM tests (tier A) are off: set " + gateEnv + "=1 to boot Debian's kernel under qemu (needs root, qemu-system-x86, btrfs-progs, busybox-static, dosfstools, mtools, genisoimage, cloud-image-utils, apt-get)"
	}
	if os.Geteuid() != 0 {
		return "VM tests need root (loop-mounting the btrfs root image after each boot)"
	}
	for _, tool := range []string{AMD64.QEMU, "mkfs.btrfs", "btrfs", "mkfs.vfat", "mcopy", "cloud-localds", "genisoimage", "apt-get", "dpkg", "depmod", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("VM tests need %s in PATH: %v", tool, err)
		}
	}
	if _, err := os.Stat(busyboxPath()); err != nil {
		return "VM tests need a static busybox (Debian busybox-static): " + err.Error()
	}
	return ""
}

func busyboxPath() string {
	if p := os.Getenv("PROVISION_E2E_BUSYBOX"); p != "" {
		return p
	}
	return "/bin/busybox"
}

// setup builds what every boot shares, once: the kernel, our binary and the
// initramfs. A failure here fails every test that needs it.
func setup(t *testing.T) *world {
	t.Helper()
	if why := needTools(); why != "" {
		t.Skip(why)
	}
	setupOnce.Do(func() {
		shared.busybox = busyboxPath()
		var err error
		workDir, err = os.MkdirTemp("", "provision-e2e-")
		if err != nil {
			shared.err = err
			return
		}
		shared.binary = os.Getenv("PROVISION_E2E_BINARY")
		if shared.binary == "" {
			shared.binary = filepath.Join(workDir, "provision")
			// The module root is two levels up from test/e2e.
			cmd := exec.Command("go", "build", "-trimpath", "-o", shared.binary, "./cmd/provision")
			cmd.Dir = "../.."
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				shared.err = fmt.Errorf("building ./cmd/provision: %w\n%s", err, out)
				return
			}
		}
		shared.kernel, err = FetchKernel(AMD64, nil)
		if err != nil {
			shared.err = err
			return
		}
		shared.initrd = filepath.Join(workDir, "initrd.cpio")
		shared.err = BuildInitramfs(shared.initrd, shared.kernel, shared.busybox, shared.binary, InitrdModules)
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return &shared
}

// machine is one test's VM with its disk, ready to boot.
type machine struct {
	t    *testing.T
	w    *world
	dir  string
	disk *RootDisk
	vm   VM
}

func newMachine(t *testing.T, layout Layout, extra Tree) *machine {
	w := setup(t)
	dir := t.TempDir()
	disk, err := BuildRoot(dir, w.busybox, RootOptions{Layout: layout, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	return &machine{t: t, w: w, dir: dir, disk: disk, vm: VM{
		Arch: AMD64, Kernel: w.kernel.Vmlinuz, Initrd: w.initrd, Root: disk,
		Timeout: 120 * time.Second,
		// A failed run would otherwise stop in the emergency shell until
		// the timeout; rebooting ends qemu (-no-reboot) at once and the
		// test fails on what the disk shows. Tests that mean to fail set
		// their own policy.
		Cmdline: []string{"provision.on_failure=reboot"},
	}}
}

// boot boots the machine once and checks that it got as far as the root's
// init and powered off. The console is saved next to the disk and logged.
func (m *machine) boot() *BootResult {
	m.t.Helper()
	logPath := filepath.Join(m.dir, fmt.Sprintf("console-%d.log", time.Now().UnixNano()))
	log, err := os.Create(logPath)
	if err != nil {
		m.t.Fatal(err)
	}
	defer log.Close()
	res, err := m.vm.Boot(context.Background(), log)
	m.t.Logf("boot took %s; console:\n%s", res.Elapsed.Round(100*time.Millisecond), res.Console)
	if err != nil {
		m.t.Fatal(err)
	}
	if res.TimedOut {
		m.t.Errorf("the VM did not power off within %s", m.vm.Timeout)
	}
	return res
}

// inspect mounts the disk on the host until the test ends (or done is called).
func (m *machine) inspect() (*Inspection, func()) {
	m.t.Helper()
	in, umount, err := Inspect(m.disk.Path, m.dir)
	if err != nil {
		m.t.Fatal(err)
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			if err := umount(); err != nil {
				m.t.Error(err)
			}
		})
	}
	m.t.Cleanup(done)
	return in, done
}

// path maps a path of the booted system to the host: /var, /home and /root
// are their own subvolumes in the snapper layout.
func (in *Inspection) path(p string) string {
	p = strings.TrimPrefix(p, "/")
	for _, sub := range []string{"var", "home", "root"} {
		if p == sub || strings.HasPrefix(p, sub+"/") {
			if _, err := os.Stat(filepath.Join(in.Top, "@", sub)); err == nil {
				return filepath.Join(in.Top, "@", p)
			}
		}
	}
	return filepath.Join(in.Root(), p)
}

func (in *Inspection) read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(in.path(p))
	if err != nil {
		t.Errorf("after boot: %v", err)
		return ""
	}
	return string(b)
}

func (in *Inspection) mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(in.path(p))
	if err != nil {
		t.Errorf("after boot: %v", err)
		return 0
	}
	return fi.Mode().Perm()
}

// snapshotIDs lists the subvolumes that are not part of the initial layout.
func (in *Inspection) subvolumePaths() []string {
	var ps []string
	for _, s := range in.Subvolumes {
		ps = append(ps, s.Path)
	}
	return ps
}

// initialDefault is the default subvolume path BuildRoot leaves.
func initialDefault(l Layout) string {
	if l == Snapper {
		return "@/.snapshots/1/snapshot"
	}
	return ""
}

// initialSubvolumes are the subvolumes BuildRoot makes.
var initialSubvolumes = map[Layout][]string{
	Snapper: {"@", "@/.snapshots", "@/.snapshots/1/snapshot", "@/var", "@/home", "@/root"},
}

// newSubvolumes lists the subvolumes that BuildRoot did not make.
func newSubvolumes(in *Inspection, l Layout) []string {
	var out []string
	for _, p := range in.subvolumePaths() {
		if !slices.Contains(initialSubvolumes[l], p) {
			out = append(out, p)
		}
	}
	return out
}

// wantBootedOnce asserts the root's init ran exactly once in the default
// subvolume: the boot got through switch_root into it.
func wantBootedOnce(t *testing.T, in *Inspection) {
	t.Helper()
	if n := in.Boots(); n != 1 {
		t.Errorf("the root's init ran %d times in the default subvolume %q, want 1", n, in.Default.Path)
	}
}

// wantNewDefault asserts the run committed: a new default subvolume.
func wantNewDefault(t *testing.T, in *Inspection, l Layout) {
	t.Helper()
	if in.Default.Path == initialDefault(l) {
		t.Errorf("default subvolume is still %q (id %d): nothing was committed; subvolumes: %q",
			in.Default.Path, in.Default.ID, in.subvolumePaths())
	}
	if l == Snapper && !strings.HasPrefix(in.Default.Path, "@/.snapshots/") {
		t.Errorf("default subvolume %q is not a snapper snapshot", in.Default.Path)
	}
}

// wantOK asserts the console shows the agent's step lines: the commit and
// "[ OK ] <step>" for each of steps.
func wantOK(t *testing.T, res *BootResult, steps ...string) {
	t.Helper()
	for _, s := range append([]string{"transaction: committed"}, steps...) {
		if !strings.Contains(res.Console, "[ OK ] "+s) {
			t.Errorf("console has no \"[ OK ] %s\" step line", s)
		}
	}
}

// runReport is what the scenarios check in the target's
// /var/log/provision/report.json (provision/report's format).
type runReport struct {
	Status     string `json:"status"`
	Result     string `json:"result"`
	InstanceID string `json:"instance_id"`
	Error      *struct {
		Origin  string `json:"origin"`
		Module  string `json:"module"`
		Message string `json:"message"`
	} `json:"error"`
	Modules []struct {
		Name   string `json:"name"`
		Result string `json:"result"`
	} `json:"modules"`
}

// reportPath is where the run leaves its report in the target (in @/var on
// the snapper layout).
const reportPath = "/var/log/provision/report.json"

// wantReport reads the target's report and checks its result ("done",
// "rolled back"...).
func wantReport(t *testing.T, in *Inspection, result string) *runReport {
	t.Helper()
	data := in.read(t, reportPath)
	if data == "" {
		return &runReport{}
	}
	var r runReport
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		t.Errorf("%s: %v", reportPath, err)
		return &r
	}
	if r.Result != result {
		t.Errorf("%s: result %q, want %q (status %q)", reportPath, r.Result, result, r.Status)
	}
	return &r
}
