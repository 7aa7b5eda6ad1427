package provision_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/provision"
)

// mountPoints lists the mount points of this mount namespace that belong
// to the image img: mounted from its loop device, or below such a mount
// (the chroot's /proc, /sys, /dev). Other tests on the machine mount
// their own things meanwhile; those are not ours to judge.
func mountPoints(t *testing.T, img string) []string {
	t.Helper()
	dev := strings.TrimSpace(strings.SplitN(sh(t, "losetup", "-j", img), ":", 2)[0])
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		mp := f[4]
		below := slices.ContainsFunc(out, func(m string) bool { return strings.HasPrefix(mp, m+"/") })
		if (dev != "" && f[sep+2] == dev) || below {
			out = append(out, mp)
		}
	}
	return out
}

// newMounts are the mount points of now not in before.
func newMounts(before, now []string) []string {
	var out []string
	for _, m := range now {
		if !slices.Contains(before, m) {
			out = append(out, m)
		}
	}
	return out
}

// runBinary runs `provision run` in this test's mount namespace (no
// private one given from outside) with extra environment.
func runBinary(t *testing.T, root, seed string, env ...string) (*exec.Cmd, *bytes.Buffer, string) {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(provisionBinary(t), "run", "--root", root, "--source", seed, "--report", rep)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	return cmd, &out, rep
}

// TestRootTierPanicBinary: the binary with a panicking step (after the
// chroot mounted the API filesystems and the target's /var and /home)
// exits 1 with the panic in its report, the old root the default and
// untouched, and no mount left behind.
func TestRootTierPanicBinary(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs")
	b := newBtrfsTarget(t, true)
	mounts := mountPoints(t, b.img)
	cmd, out, rep := runBinary(t, b.root, okSeed(t, "iid-panic"), provision.PanicPointEnv+"=step:scripts")
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Errorf("killed by %v", ws.Signal())
		}
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	var r map[string]any
	data, _ := os.ReadFile(rep)
	json.Unmarshal(data, &r)
	if errs, _ := json.Marshal(r["error"]); !strings.Contains(string(errs), "panic: test panic point") {
		t.Errorf("report error %s does not carry the panic\n%s", errs, out)
	}
	if r["status"] != "error" {
		t.Errorf("report status %v, want error", r["status"])
	}
	if left := newMounts(mounts, mountPoints(t, b.img)); len(left) > 0 {
		t.Errorf("mounts left behind: %v", left)
	}
	b.expectOld(t)
}
