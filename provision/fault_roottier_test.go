package provision_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules/fault"
	"github.com/provision-dev/provision/provision/snapshot"
)

// faultCase is one row of the fault-injection table: an external call
// made to fail, and what the run must do about it.
type faultCase struct {
	rule string // PROVISION_TEST_FAULT
	// errText must be in the report's error: the errno as the kernel
	// words it, and the step.
	errText []string
	// committed: the failure comes after the commit point and is the
	// documented continuation (a warning); otherwise the run aborts.
	committed bool
	warning   string // committed: what the run must say
	// dirty: the run leaves subvolumes for the next run's recovery to
	// delete (an abort or a cleanup that could not delete).
	dirty bool
	// readOnlyRoot: the target's root snapshot is read-only, as on
	// MicroOS (the new one is made read-only at the commit).
	readOnlyRoot bool
}

// The btrfs snapshot transaction on the snapper layout, with a config
// that runs a program (so the chroot mounts the API filesystems and the
// target's /var and /home).
var btrfsFaults = []faultCase{
	// Before the transaction (recovery mounts nothing where there is
	// nothing to recover): reading the recorded instance-id from the
	// target's own /var, in a NoAPI chroot that mounts /var alone.
	{rule: "mount#1:EPERM", errText: []string{"reading the recorded instance-id", "operation not permitted"}},
	{rule: "mount#3:ENOSPC", errText: []string{"reading the recorded instance-id", "no space left on device"}},
	// The transaction's top level, then the chroot's mounts.
	{rule: "mount#4:EIO", errText: []string{"input/output error"}},
	{rule: "mount#6:EIO", errText: []string{"preparing the chroot", "input/output error"}},
	{rule: "mount#9:ENOSPC", errText: []string{"preparing the chroot", "no space left on device"}},
	{rule: "btrfs.snapshot:ENOSPC", errText: []string{"no space left on device"}},                                   // the root snapshot
	{rule: "btrfs.set-flags:EROFS", errText: []string{"commit", "read-only file system"}, readOnlyRoot: true},       // the new root made read-only
	{rule: "btrfs.set-default:EIO", errText: []string{"commit", "input/output error"}},                              // the commit point
	{rule: "exec:ENOENT", errText: []string{"runcmd", "no such file or directory"}},                                 // the program
	{rule: "write#2:ENOSPC", errText: []string{"/etc/passwd", "write", "no space left on device"}},                  // a module's file
	{rule: "rename#2:EROFS", errText: []string{"/etc/passwd", "rename", "read-only file system"}},                   // a file put in place
	{rule: "syncfs:EIO", errText: []string{"commit", "syncfs", "input/output error"}},                               // before the commit point
	{rule: "exec:ENOENT,btrfs.delete:EBUSY", errText: []string{"runcmd", "no such file or directory"}, dirty: true}, // the abort cannot delete
	// Documented continuations. /var that cannot be snapshotted is written
	// through the undo journal instead (the run says so); the old /var and
	// /home are deleted after the commit point, and what is left is
	// finished by the next run's recovery; a busy unmount is detached.
	{rule: "btrfs.snapshot#2:EROFS", committed: true, warning: "/var is outside the snapshot"},
	{rule: "btrfs.delete:EBUSY", committed: true, dirty: true},
	{rule: "umount#5:EBUSY", committed: true},
}

// TestRootTierFaultInjection runs the binary with one external call made
// to fail at a time. Every failure before the commit point aborts
// cleanly: exit 1, the report names the errno, the old root is the
// default and untouched, no snapshot, nested subvolume or mount is left;
// and a run without the fault afterwards provisions the machine.
func TestRootTierFaultInjection(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	points := map[string]bool{}
	for _, c := range btrfsFaults {
		for _, r := range strings.Split(c.rule, ",") {
			name, _, _ := strings.Cut(r, ":")
			name, _, _ = strings.Cut(name, "#")
			points[name] = true
		}
		t.Run(c.rule, func(t *testing.T) {
			b := newBtrfsTarget(t, true)
			if c.readOnlyRoot {
				sh(t, "btrfs", "property", "set", "-ts", filepath.Join(b.top, b.rootPath), "ro", "true")
			}
			mounts := mountPoints(t, b.img)
			r := runWithFault(t, b.root, okSeed(t, "iid-fault"), c.rule)
			if left := newMounts(mounts, mountPoints(t, b.img)); len(left) > 0 {
				t.Errorf("mounts left behind: %v", left)
			}
			if c.committed {
				if r.code != 0 {
					t.Fatalf("exit %d, want 0 (a documented continuation)\n%s", r.code, r.out)
				}
				if !strings.Contains(r.out, c.warning) {
					t.Errorf("the run does not say %q:\n%s", c.warning, r.out)
				}
				if !c.dirty {
					b.expectNew(t)
					return
				}
				// The next run finishes the cleanup, then has nothing to do.
				r = runCLI(t, b.root, okSeed(t, "iid-fault"), "")
				if r.code != 0 {
					t.Fatalf("the run after: exit %d\n%s", r.code, r.out)
				}
				b.expectNew(t)
				return
			}
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
			}
			errs, _ := json.Marshal(r.report["error"])
			for _, w := range c.errText {
				if !strings.Contains(string(errs), w) {
					t.Errorf("report error %s lacks %q", errs, w)
				}
			}
			if id, p := b.defaultSubvol(t); id != b.rootID {
				t.Fatalf("default subvolume %d (%s), want the old root %d", id, p, b.rootID)
			}
			if !c.dirty {
				b.expectOld(t)
			}
			// The machine is not stuck: the next boot provisions it.
			r = runCLI(t, b.root, okSeed(t, "iid-fault"), "")
			if r.code != 0 {
				t.Fatalf("the run after the fault: exit %d\n%s", r.code, r.out)
			}
			b.expectNew(t)
		})
	}
	// Every point the transaction and the chroot pass is in the table.
	for _, p := range []string{fault.PointMount, fault.PointUnmount, fault.PointBtrfsSnapshot, fault.PointBtrfsSetFlags,
		fault.PointBtrfsDefault, fault.PointBtrfsDelete, fault.PointExec, fault.PointWrite, fault.PointRename, fault.PointSyncfs} {
		if !points[p] {
			t.Errorf("no row for %s", p)
		}
	}
}

// TestRootTierFaultInjectionJournal: the undo-journal backend (ext4), where
// files are flushed one by one and the journal keeps what it replaces.
// A failing journal record, write or flush aborts and restores; a restore
// that fails keeps the journal, the run says so, and the next run
// recovers from it before it provisions.
func TestRootTierFaultInjectionJournal(t *testing.T) {
	requireRootTier(t, "mkfs.ext4")
	for _, c := range []struct {
		rule    string
		errText string
		stuck   bool // the rollback itself failed: the journal is kept
	}{
		{"journal.write#2:ENOSPC", "no space left on device", false},
		{"write#3:EIO", "input/output error", false},
		{"fsync#2:EIO", "input/output error", false},
		{"rename#2:EDQUOT", "disk quota exceeded", false},
		{"exec:ENOENT,journal.restore#1:EIO", "input/output error", true},
	} {
		t.Run(c.rule, func(t *testing.T) {
			root := ext4DebianTree(t)
			skip := []string{"var/log", "proc", "sys", "dev", "run", "tmp", "lost+found"}
			before := digest(t, root, skip...)
			r := runWithFault(t, root, okSeed(t, "iid-fault"), c.rule)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
			}
			if !strings.Contains(r.out, c.errText) {
				t.Errorf("output lacks %q:\n%s", c.errText, r.out)
			}
			_, jerr := os.Lstat(filepath.Join(root, snapshot.JournalDirName))
			if c.stuck {
				if jerr != nil {
					t.Errorf("a rollback that failed dropped its journal: %v", jerr)
				}
			} else {
				if jerr == nil {
					t.Errorf("journal left behind")
				}
				for _, d := range diffDigest(before, digest(t, root, skip...)) {
					t.Errorf("after the rollback: %s", d)
				}
			}
			// The next run recovers what was left, then provisions.
			r = runCLI(t, root, okSeed(t, "iid-fault"), "")
			if r.code != 0 {
				t.Fatalf("the run after the fault: exit %d\n%s", r.code, r.out)
			}
			if _, err := os.Lstat(filepath.Join(root, snapshot.JournalDirName)); err == nil {
				t.Errorf("journal left after a good run")
			}
			passwd, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
			if !strings.Contains(string(passwd), "\nalice:x:") {
				t.Error("no alice in /etc/passwd after the good run")
			}
		})
	}
}

// runWithFault is runCLI with PROVISION_TEST_FAULT set.
func runWithFault(t *testing.T, root, seed, rule string) cliResult {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(provisionBinary(t), "run", "--root", root, "--source", seed, "--report", rep)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s", fault.Env, rule))
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	r := cliResult{out: string(out)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(rep); err == nil {
		json.Unmarshal(data, &r.report)
	}
	return r
}

// TestRootTierFstabFaults: the target's fstab names what is not there. A
// mount point nothing in the run needs is left out with a warning; one the
// configuration writes below, or any when a program runs (it may write
// anywhere), or /var (the run's record) fails cleanly, naming the line.
func TestRootTierFstabFaults(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	const missing = "UUID=00000000-0000-4000-8000-000000000000 /srv btrfs subvol=/@/srv"
	filesOnly := "#cloud-config\nusers:\n  - name: alice\n    gecos: Alice\nwrite_files:\n  - path: /etc/provisioned\n    content: \"root\\n\"\n"
	for _, c := range []struct {
		name, fstab, userData string
		errText               []string // "": the run commits
		warning               string
	}{
		{"missing device, nothing needs it", missing + " 0 0\n", filesOnly, nil, "/srv is not mounted"},
		{"missing device, a file below it", missing + " 0 0\n", filesOnly + "  - path: /srv/www/index.html\n    content: hi\n",
			[]string{"/srv/www/index.html", "which is not mounted", "/etc/fstab:4"}, ""},
		{"missing device, a program runs", missing + " 0 0\n", filesOnly + "runcmd:\n  - \"true\"\n",
			[]string{"preparing the chroot", "/etc/fstab:4: /srv"}, ""},
		{"missing device, nofail", missing + ",nofail 0 0\n", filesOnly + "runcmd:\n  - \"true\"\n", nil, ""},
		{"/var subvolume missing", "", filesOnly, []string{"reading the recorded instance-id", "/var"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBtrfsTarget(t, true)
			fstab := filepath.Join(b.top, b.rootPath, "etc/fstab")
			data, err := os.ReadFile(fstab)
			if err != nil {
				t.Fatal(err)
			}
			if c.fstab != "" {
				data = append(data, c.fstab...)
			} else {
				data = []byte(strings.Replace(string(data), "subvol=/@/var", "subvol=/@/var-gone", 1))
			}
			os.WriteFile(fstab, data, 0o644)
			b.before = b.capture(t)
			seed := t.TempDir()
			os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-fstab\nlocal-hostname: node1\n"), 0o644)
			os.WriteFile(filepath.Join(seed, "user-data"), []byte(c.userData), 0o644)
			mounts := mountPoints(t, b.img)
			r := runCLI(t, b.root, seed, "")
			if left := newMounts(mounts, mountPoints(t, b.img)); len(left) > 0 {
				t.Errorf("mounts left behind: %v", left)
			}
			if c.errText == nil {
				if r.code != 0 {
					t.Fatalf("exit %d, want 0\n%s", r.code, r.out)
				}
				if !strings.Contains(r.out, c.warning) {
					t.Errorf("the run does not say %q:\n%s", c.warning, r.out)
				}
				if id, _ := b.defaultSubvol(t); id == b.rootID {
					t.Errorf("not committed")
				}
				return
			}
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
			}
			errs, _ := json.Marshal(r.report["error"])
			for _, w := range c.errText {
				if !strings.Contains(string(errs), w) {
					t.Errorf("report error %s lacks %q", errs, w)
				}
			}
			if c.fstab != "" {
				b.expectOld(t)
			} else if id, p := b.defaultSubvol(t); id != b.rootID {
				t.Errorf("default %d (%s), want the old root", id, p)
			}
		})
	}
}

// TestRootTierReadOnlyTopLevel: the whole filesystem read-only (a
// write-protected device: every mount of it is read-only, the top level
// the transaction mounts too). The run fails before anything is written,
// naming the read-only filesystem, and the image is byte for byte as it was.
func TestRootTierReadOnlyTopLevel(t *testing.T) {
	b := newBtrfsTarget(t, true)
	sh(t, "umount", filepath.Join(b.root, ".snapshots"))
	sh(t, "umount", b.root)
	sh(t, "umount", b.top)
	sum := func() string { return strings.Fields(sh(t, "sha256sum", b.img))[0] }
	before := sum()
	dev := strings.TrimSpace(sh(t, "losetup", "-r", "-f", "--show", b.img))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	root := filepath.Join(t.TempDir(), "sysroot")
	mountT(t, "ro,subvol="+b.rootPath, dev, root)
	r := runCLI(t, root, okSeed(t, "iid-ro"), "")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "is a read-only device") {
		t.Errorf("the error does not name the read-only filesystem:\n%s", r.out)
	}
	exec.Command("umount", root).Run()
	exec.Command("losetup", "-d", dev).Run()
	if after := sum(); after != before {
		t.Error("the image changed")
	}
}
