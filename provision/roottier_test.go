package provision_test

// Root tier of the engine: the real `provision run --root MOUNTPOINT` binary
// on btrfs loop images (snapper and plain layouts, /var and /home in their
// own subvolumes named by the tree's fstab), on ext4 and on a plain
// directory. Skipped unless root with mkfs.btrfs, btrfs-progs and busybox.

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/provision/snapshot"
)

func requireRootTier(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("root tier: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("root tier: needs root (loop devices, mount, chroot)")
	}
	for _, tool := range append([]string{"mount", "umount", "losetup"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("root tier: %s not installed", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("root tier: no loop devices")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("root tier: needs /bin/busybox (busybox-static) as the tree's /bin/sh")
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

// provisionBinary builds cmd/provision once per test binary.
func provisionBinary(t *testing.T) string {
	t.Helper()
	// A binary built elsewhere (another checkout, a release build).
	if p := os.Getenv("PROVISION_TEST_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "provision-bin-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "/usr/local/go/bin/go"
		}
		binPath = filepath.Join(binDir, "provision")
		cmd := exec.Command(goTool, "build", "-o", binPath, "github.com/provision-dev/provision/cmd/provision")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mountT(t *testing.T, opts, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "mount", "-o", opts, src, dst)
	t.Cleanup(func() { exec.Command("umount", "-l", dst).Run() })
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// debianTree fills dir with what the modules and scripts need of a Debian
// system: this host's account files, skel, a zone file, busybox as /bin/sh.
func debianTree(t *testing.T, dir, fstab string) {
	t.Helper()
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"passwd", 0o644}, {"group", 0o644}, {"shadow", 0o640}, {"gshadow", 0o640}, {"login.defs", 0o644}} {
		copyFile(t, "/etc/"+f.name, filepath.Join(dir, "etc", f.name), f.mode)
	}
	filepath.WalkDir("/etc/skel", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			copyFile(t, p, filepath.Join(dir, p), 0o644)
		}
		return nil
	})
	os.MkdirAll(filepath.Join(dir, "etc/skel"), 0o755)
	if _, err := os.Stat("/usr/share/zoneinfo/Europe/Berlin"); err == nil {
		copyFile(t, "/usr/share/zoneinfo/Europe/Berlin", filepath.Join(dir, "usr/share/zoneinfo/Europe/Berlin"), 0o644)
	}
	copyFile(t, "/bin/busybox", filepath.Join(dir, "bin/busybox"), 0o755)
	for _, a := range []string{"sh", "echo", "cat", "mkdir", "id", "touch", "rm"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	for _, d := range []string{"var", "home", "root", "tmp", "run", "proc", "sys", "dev"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	// Not a first boot: the explicit --source alone asks for the run.
	os.WriteFile(filepath.Join(dir, "etc/machine-id"), []byte("0123456789abcdef0123456789abcdef\n"), 0o444)
	if fstab != "" {
		os.WriteFile(filepath.Join(dir, "etc/fstab"), []byte(fstab), 0o644)
	}
}

// ext4DebianTree is debianTree on an ext4 filesystem of its own (a loop
// image): the undo-journal backend's target.
func ext4DebianTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	img := filepath.Join(t.TempDir(), "img")
	sh(t, "truncate", "-s", "64M", img)
	sh(t, "mkfs.ext4", "-q", img)
	mountT(t, "loop", img, root)
	debianTree(t, root, "")
	return root
}

// The seeds.
func okSeed(t *testing.T, instance string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: "+instance+"\nlocal-hostname: node1\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "user-data"), []byte(`#cloud-config
users:
  - name: alice
    gecos: Alice
write_files:
  - path: /etc/provisioned
    content: "root\n"
  - path: /var/lib/provisioned
    content: "var\n"
runcmd:
  - echo ran > /home/alice/ran-by-runcmd
  - mkdir -p /var/lib/runcmd && echo ran > /var/lib/runcmd/ok
`), 0o644)
	return dir
}

const failScript = `#!/bin/sh
# A user, data in /var and /home, then failure.
echo 'eve:x:1500:1500::/home/eve:/bin/sh' >> /etc/passwd
mkdir -p /home/eve /var/lib/eve
echo secret > /home/eve/file
echo data > /var/lib/eve/data
echo 'about to fail'
exit 3
`

func failSeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	copyScript := filepath.Join(dir, "combustion", "script")
	os.MkdirAll(filepath.Dir(copyScript), 0o755)
	os.WriteFile(copyScript, []byte(failScript), 0o755)
	return dir
}

type cliResult struct {
	code   int
	killed bool
	out    string
	report map[string]any
}

func runCLI(t *testing.T, root, seed, killPoint string) cliResult {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(provisionBinary(t), "run", "--root", root, "--source", seed, "--report", rep)
	cmd.Env = append(os.Environ(), snapshot.KillPointEnv+"="+killPoint)
	// Its own mount namespace, like a boot: whatever it mounted dies with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	r := cliResult{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(rep); err == nil {
		json.Unmarshal(data, &r.report)
	}
	return r
}

// digest is a comparable picture of a tree: type, mode, owner, size and a
// content hash per path.
func digest(t *testing.T, dir string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		v := fmt.Sprintf("%v %d:%d", info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(data))
		case info.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v += " -> " + l
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffDigest(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			d = append(d, "removed "+k)
		} else if v != w {
			d = append(d, "changed "+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

// btrfsTarget is a loop btrfs holding a Debian-like root, with /var and
// /home in subvolumes of their own, mounted at root as the initrd mounts
// /sysroot (nothing mounted on its /var).
type btrfsTarget struct {
	img, top, root           string
	rootPath, varPath, homeP string
	snapper                  bool
	rootID                   uint64
	before                   map[string]map[string]string // root, var, home
	subvolsBefore            []string
}

func newBtrfsTarget(t *testing.T, snapper bool) *btrfsTarget {
	t.Helper()
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	dir := t.TempDir()
	b := &btrfsTarget{img: filepath.Join(dir, "img"), top: filepath.Join(dir, "top"), root: filepath.Join(dir, "sysroot"), snapper: snapper}
	sh(t, "truncate", "-s", "300M", b.img)
	sh(t, "mkfs.btrfs", "-q", b.img)
	mountT(t, "loop", b.img, b.top)
	uuid := strings.TrimSpace(sh(t, "blkid", "-s", "UUID", "-o", "value", b.img))
	sub := func(p string) { sh(t, "btrfs", "-q", "subvolume", "create", filepath.Join(b.top, p)) }
	sub("@")
	if snapper {
		// openSUSE: the root is snapshot 1, /var and /home nested in @.
		b.rootPath, b.varPath, b.homeP = "@/.snapshots/1/snapshot", "@/var", "@/home"
		sub("@/.snapshots")
		os.Mkdir(filepath.Join(b.top, "@/.snapshots/1"), 0o755)
		sub(b.rootPath)
		os.WriteFile(filepath.Join(b.top, "@/.snapshots/1/info.xml"), []byte("<?xml version=\"1.0\"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n  <date>2024-01-01 00:00:00</date>\n  <description>first root filesystem</description>\n</snapshot>\n"), 0o600)
	} else {
		// Ubuntu-like: @, @var and @home side by side.
		b.rootPath, b.varPath, b.homeP = "@", "@var", "@home"
	}
	sub(b.varPath)
	sub(b.homeP)
	fstab := fmt.Sprintf("UUID=%s / btrfs defaults 0 0\nUUID=%s /var btrfs subvol=/%s 0 0\nUUID=%s /home btrfs subvol=/%s 0 0\n", uuid, uuid, b.varPath, uuid, b.homeP)
	rootAbs := filepath.Join(b.top, b.rootPath)
	debianTree(t, rootAbs, fstab)
	os.MkdirAll(filepath.Join(b.top, b.varPath, "lib/apt"), 0o755)
	os.WriteFile(filepath.Join(b.top, b.varPath, "lib/apt/state"), []byte("old\n"), 0o644)
	os.MkdirAll(filepath.Join(b.top, b.homeP, "bob"), 0o755)
	os.WriteFile(filepath.Join(b.top, b.homeP, "bob/notes"), []byte("bob's\n"), 0o644)
	if snapper {
		os.MkdirAll(filepath.Join(rootAbs, "etc/snapper/configs"), 0o755)
		os.Mkdir(filepath.Join(rootAbs, ".snapshots"), 0o750)
		os.WriteFile(filepath.Join(rootAbs, "etc/snapper/configs/root"), []byte("SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\nNUMBER_CLEANUP=\"yes\"\n"), 0o640)
	}
	id := strings.TrimSpace(sh(t, "btrfs", "inspect-internal", "rootid", rootAbs))
	b.rootID, _ = strconv.ParseUint(id, 10, 64)
	sh(t, "btrfs", "subvolume", "set-default", id, b.top)
	mountT(t, "loop,subvol="+b.rootPath, b.img, b.root)
	if snapper {
		mountT(t, "loop,subvol=@/.snapshots", b.img, filepath.Join(b.root, ".snapshots"))
	}
	b.before = b.capture(t)
	b.subvolsBefore = b.subvols(t)
	return b
}

func (b *btrfsTarget) capture(t *testing.T) map[string]map[string]string {
	return map[string]map[string]string{
		"old root": digest(t, filepath.Join(b.top, b.rootPath), ".snapshots"),
		"/var":     digest(t, filepath.Join(b.top, b.varPath)),
		"/home":    digest(t, filepath.Join(b.top, b.homeP)),
	}
}

func (b *btrfsTarget) defaultSubvol(t *testing.T) (uint64, string) {
	t.Helper()
	out := sh(t, "btrfs", "subvolume", "get-default", b.top)
	m := regexp.MustCompile(`^ID (\d+) .* path (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("get-default: %q", out)
	}
	id, _ := strconv.ParseUint(m[1], 10, 64)
	return id, m[2]
}

func (b *btrfsTarget) subvols(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(sh(t, "btrfs", "subvolume", "list", b.top)), "\n") {
		if i := strings.Index(l, " path "); i >= 0 {
			out = append(out, l[i+6:])
		}
	}
	sort.Strings(out)
	return out
}

// expectOld: the old root is the default, nothing changed anywhere, no
// snapshot and no state left.
func (b *btrfsTarget) expectOld(t *testing.T) {
	t.Helper()
	if id, p := b.defaultSubvol(t); id != b.rootID {
		t.Errorf("default subvolume %d (%s), want the old root %d", id, p, b.rootID)
	}
	if got := b.subvols(t); strings.Join(got, " ") != strings.Join(b.subvolsBefore, " ") {
		t.Errorf("subvolumes %v, want %v (a snapshot left behind?)", got, b.subvolsBefore)
	}
	now := b.capture(t)
	for name, before := range b.before {
		for _, d := range diffDigest(before, now[name]) {
			if !reportWrite(name, d) {
				t.Errorf("%s: %s", name, d)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(b.top, snapshot.StateDirName)); err == nil {
		t.Errorf("%s left in the top level", snapshot.StateDirName)
	}
	if b.snapper {
		if ents, _ := os.ReadDir(filepath.Join(b.top, "@/.snapshots")); len(ents) != 1 {
			t.Errorf("snapper directories left: %v", ents)
		}
	}
}

// reportWrite: a failed run leaves its report in the target's
// /var/log/provision on purpose (SPEC §2); nothing else may change.
func reportWrite(tree, diff string) bool {
	return tree == "/var" && (strings.HasSuffix(diff, " log") || strings.Contains(diff, " log/provision"))
}

// expectNew: a new default holding the whole provisioning, /var and /home
// with the run's writes, the old root unchanged, nothing left over.
func (b *btrfsTarget) expectNew(t *testing.T) string {
	t.Helper()
	id, p := b.defaultSubvol(t)
	if id == b.rootID {
		t.Fatalf("default is still the old root %d", id)
	}
	newRoot := filepath.Join(b.top, p)
	passwd, _ := os.ReadFile(filepath.Join(newRoot, "etc/passwd"))
	if !regexp.MustCompile(`(?m)^alice:x:\d+:\d+:Alice:/home/alice:`).Match(passwd) {
		t.Errorf("new default %s: no alice in /etc/passwd", p)
	}
	for _, f := range []string{filepath.Join(newRoot, "etc/provisioned"), filepath.Join(b.top, b.varPath, "lib/provision/instance-id"),
		filepath.Join(b.top, b.varPath, "lib/provisioned"), filepath.Join(b.top, b.varPath, "lib/runcmd/ok"),
		filepath.Join(b.top, b.varPath, "lib/apt/state"),
		filepath.Join(b.top, b.homeP, "alice/ran-by-runcmd"), filepath.Join(b.top, b.homeP, "bob/notes")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after the run: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(newRoot, "home/alice")); err == nil {
		t.Errorf("alice's home landed in the root snapshot's /home mount point, hidden at boot")
	}
	for _, d := range diffDigest(b.before["old root"], digest(t, filepath.Join(b.top, b.rootPath), ".snapshots")) {
		t.Errorf("old root changed: %s", d)
	}
	for _, s := range b.subvols(t) {
		if strings.Contains(s, ".provision-") {
			t.Errorf("leftover subvolume %s", s)
		}
	}
	if _, err := os.Lstat(filepath.Join(b.top, snapshot.StateDirName)); err == nil {
		t.Errorf("%s left in the top level", snapshot.StateDirName)
	}
	if b.snapper {
		if !regexp.MustCompile(`^@/\.snapshots/\d+/snapshot$`).MatchString(p) {
			t.Errorf("new default %s is not in the snapper layout", p)
		}
		if info, err := os.ReadFile(filepath.Join(b.top, filepath.Dir(p), "info.xml")); err != nil || strings.Contains(string(info), "in-progress") {
			t.Errorf("info.xml of %s: %v\n%s", p, err, info)
		}
		if want := len(b.subvolsBefore) + 1; len(b.subvols(t)) != want {
			t.Errorf("subvolumes %v, want %d", b.subvols(t), want)
		}
	}
	return p
}

func reportResult(r cliResult) string {
	s, _ := r.report["result"].(string)
	if s == "" {
		s, _ = r.report["status"].(string)
	}
	return s
}

func TestRootTierBtrfs(t *testing.T) {
	for _, layout := range []string{"snapper", "plain"} {
		t.Run(layout, func(t *testing.T) {
			b := newBtrfsTarget(t, layout == "snapper")

			// The failing Combustion script: everything rolled back.
			r := runCLI(t, b.root, failSeed(t), "")
			if r.code != 1 {
				t.Fatalf("failing script: exit %d, want 1\n%s", r.code, r.out)
			}
			if errs, _ := json.Marshal(r.report["error"]); !strings.Contains(string(errs), "combustion script exited with status 3") {
				t.Errorf("report error %s does not name the script and its exit status", errs)
			}
			if !strings.Contains(r.out, "[combustion] about to fail") {
				t.Errorf("script output not on the console:\n%s", r.out)
			}
			b.expectOld(t)

			// Success.
			r = runCLI(t, b.root, okSeed(t, "iid-one"), "")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.out)
			}
			p := b.expectNew(t)
			if b.snapper {
				if _, err := exec.LookPath("snapper"); err == nil {
					out := sh(t, "snapper", "--no-dbus", "-r", b.root, "-c", "root", "list")
					num := strings.Split(p, "/")[2]
					if !regexp.MustCompile(`(?m)^` + num + `[+ ] *\| single .*\| Snapshot Update of #\d+`).MatchString(out) {
						t.Errorf("snapper list does not show snapshot %s:\n%s", num, out)
					}
				}
			}

			// Same instance again, from the new default: nothing to do.
			b2 := filepath.Join(t.TempDir(), "newroot")
			mountT(t, "loop,subvol="+p, b.img, b2)
			subvols := b.subvols(t)
			r = runCLI(t, b2, okSeed(t, "iid-one"), "")
			if r.code != 0 || reportResult(r) != "nothing to do" {
				t.Errorf("second run: exit %d, report %v\n%s", r.code, r.report, r.out)
			}
			if id, q := b.defaultSubvol(t); q != p || strings.Join(b.subvols(t), " ") != strings.Join(subvols, " ") {
				t.Errorf("second run changed the default (%d %s) or the subvolumes", id, q)
			}
			// A new instance-id provisions again.
			r = runCLI(t, b2, okSeed(t, "iid-two"), "")
			if r.code != 0 {
				t.Fatalf("new instance: exit %d\n%s", r.code, r.out)
			}
			if _, q := b.defaultSubvol(t); q == p {
				t.Errorf("new instance-id: default still %s", p)
			}
		})
	}
}

// abortOnly are kill points only a failing run passes.
func abortOnly(kp string) bool {
	return strings.HasPrefix(kp, "btrfs.abort.") || strings.HasPrefix(kp, "journal.rollback.")
}

// TestRootTierCrashEveryKillPoint kills `provision run` at every step of the
// transaction, then runs it again: the first run leaves the old root or the
// fully provisioned new one, the second ends provisioned, nothing left over.
func TestRootTierCrashEveryKillPoint(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	var points []string
	for _, kp := range snapshot.KillPoints() {
		if strings.HasPrefix(kp, "btrfs.") || strings.HasPrefix(kp, "journal.") && !strings.HasSuffix(kp, ".done") {
			points = append(points, kp)
		}
	}
	if len(points) < 20 {
		t.Fatalf("only %d kill points", len(points))
	}
	killed := 0
	for _, kp := range points {
		t.Run(kp, func(t *testing.T) {
			b := newBtrfsTarget(t, true)
			seed := okSeed(t, "iid-one")
			if abortOnly(kp) {
				seed = failSeed(t)
			}
			r := runCLI(t, b.root, seed, kp)
			if r.killed {
				killed++
			} else if r.code != 0 && !abortOnly(kp) {
				t.Fatalf("run not killed at %s: exit %d\n%s", kp, r.code, r.out)
			}
			if id, p := b.defaultSubvol(t); id != b.rootID {
				// Past the commit point: the next boot mounts the new
				// default, which has nothing to do; the run's recovery
				// still finishes the /var, /home swap and bookkeeping.
				newRoot := filepath.Join(t.TempDir(), "newroot")
				mountT(t, "loop,subvol="+p, b.img, newRoot)
				r2 := runCLI(t, newRoot, okSeed(t, "iid-one"), "")
				if r2.code != 0 || reportResult(r2) != "nothing to do" {
					t.Fatalf("run after the crash on the new default: exit %d, result %q\n%s", r2.code, reportResult(r2), r2.out)
				}
				b.expectNew(t)
				return
			}
			// Before the commit point: the old root is the default and
			// nothing of the run reached it, /var or /home.
			now := b.capture(t)
			for name, before := range b.before {
				for _, d := range diffDigest(before, now[name]) {
					if !reportWrite(name, d) {
						t.Errorf("after a crash before the commit point: %s: %s", name, d)
					}
				}
			}
			r2 := runCLI(t, b.root, okSeed(t, "iid-one"), "")
			if r2.code != 0 {
				t.Fatalf("run after the crash: exit %d\n%s", r2.code, r2.out)
			}
			b.expectNew(t)
		})
	}
	t.Logf("killed at %d of %d kill points", killed, len(points))
	if killed < 20 {
		t.Errorf("the run was killed at only %d kill points", killed)
	}
}

// journalFailSeed fails in runcmd after the modules wrote users and files:
// the journal backend undoes every module write.
func journalFailSeed(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: iid-fail\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "user-data"), []byte(`#cloud-config
users:
  - name: mallory
write_files:
  - path: /var/lib/mallory
    content: "x\n"
  - path: /etc/mallory
    content: "x\n"
runcmd:
  - exit 3
`), 0o644)
	return dir
}

func TestRootTierJournal(t *testing.T) {
	for _, backing := range []string{"ext4", "dir"} {
		t.Run(backing, func(t *testing.T) {
			requireRootTier(t, "mkfs.ext4")
			root := filepath.Join(t.TempDir(), "root")
			if backing == "ext4" {
				img := filepath.Join(t.TempDir(), "img")
				sh(t, "truncate", "-s", "64M", img)
				sh(t, "mkfs.ext4", "-q", img)
				mountT(t, "loop", img, root)
			}
			debianTree(t, root, "")
			skip := []string{"var/log", "proc", "sys", "dev", "run", "tmp", "lost+found"}
			before := digest(t, root, skip...)

			r := runCLI(t, root, journalFailSeed(t), "")
			if r.code != 1 {
				t.Fatalf("failing runcmd: exit %d, want 1\n%s", r.code, r.out)
			}
			if errs, _ := json.Marshal(r.report["error"]); !strings.Contains(string(errs), "exited with status 3") {
				t.Errorf("report error %s does not give the exit status", errs)
			}
			for _, d := range diffDigest(before, digest(t, root, skip...)) {
				t.Errorf("after the rollback: %s", d)
			}
			if _, err := os.Lstat(filepath.Join(root, snapshot.JournalDirName)); err == nil {
				t.Errorf("journal left behind")
			}

			// A failing Combustion script: rolled back as far as the
			// journal reaches; its own direct writes are not undone, and
			// the run says so.
			r = runCLI(t, root, failSeed(t), "")
			if r.code != 1 || !strings.Contains(r.out, "scripts write directly is NOT undone") {
				t.Errorf("failing script on the journal backend: exit %d, no warning about direct writes\n%s", r.code, r.out)
			}

			r = runCLI(t, root, okSeed(t, "iid-one"), "")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.out)
			}
			// Nothing of the run holds the tree once its programs are
			// done: the chroot's bind of the tree unmounts cleanly.
			if strings.Contains(r.out, "busy, detaching it lazily") {
				t.Errorf("the chroot's mounts were busy at the end:\n%s", r.out)
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if !strings.Contains(string(passwd), "\nalice:x:") {
				t.Error("no alice in /etc/passwd")
			}
			for _, f := range []string{"etc/provisioned", "var/lib/provisioned", "var/lib/runcmd/ok", "home/alice/ran-by-runcmd", "var/lib/provision/instance-id"} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Error(err)
				}
			}
			after := digest(t, root, skip...)
			r = runCLI(t, root, okSeed(t, "iid-one"), "")
			if r.code != 0 || reportResult(r) != "nothing to do" {
				t.Errorf("second run: exit %d, result %q\n%s", r.code, reportResult(r), r.out)
			}
			if d := diffDigest(after, digest(t, root, skip...)); len(d) > 0 {
				t.Errorf("second run changed the tree: %v", d)
			}
			r = runCLI(t, root, okSeed(t, "iid-two"), "")
			if r.code != 0 || reportResult(r) != "done" {
				t.Errorf("new instance-id: exit %d, result %q\n%s", r.code, reportResult(r), r.out)
			}
			rec, _ := os.ReadFile(filepath.Join(root, "var/lib/provision/instance-id"))
			if strings.TrimSpace(string(rec)) != "iid-two" {
				t.Errorf("recorded instance %q, want iid-two", rec)
			}
		})
	}
}

// A runcmd marked non-fatal that fails: everything else is committed, the
// report says "degraded done" (status exit 2), the failure is a warning.
// Without the mark the same failure rolls back (TestRootTierBtrfs).
func TestRootTierNonFatalRuncmd(t *testing.T) {
	b := newBtrfsTarget(t, true)
	seed := okSeed(t, "iid-nonfatal")
	ud := filepath.Join(seed, "user-data")
	data, err := os.ReadFile(ud)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, "  - \"# provision: non-fatal\"\n  - echo the mirror is down; exit 4\n"...)
	os.WriteFile(ud, data, 0o644)
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(provisionBinary(t), "run", "--root", b.root, "--source", seed, "--report", rep)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	for _, want := range []string{"[runcmd] the mirror is down", "[WARN] scripts: run runcmd", "runcmd exited with status 4 (marked non-fatal", "[ OK ] transaction: committed"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("console lacks %q:\n%s", want, out)
		}
	}
	b.expectNew(t)
	status := exec.Command(provisionBinary(t), "status", "--long", "--report", rep)
	sout, err := status.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("status: %v, want exit status 2\n%s", err, sout)
	}
	if !strings.Contains(string(sout), "extended_status: degraded done") {
		t.Errorf("status --long:\n%s", sout)
	}
}
