package provision_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRootTierMountsSwap: mounts and swap on a real btrfs snapper layout.
// The swap file goes to /var (a subvolume snapper leaves out) instead of
// the snapshotted root, NOCOW (lsattr's C) and accepted by swapon; the new
// snapshot's fstab keeps the image's lines, gains the marked ones, and
// util-linux's findmnt parses it; the mount points are made.
func TestRootTierMountsSwap(t *testing.T) {
	requireRootTier(t, "mkfs.btrfs", "btrfs", "lsattr", "findmnt")
	b := newBtrfsTarget(t, true)
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: iid-swap\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte(`#cloud-config
mounts:
  - [ vdz, /mnt/data, ext4 ]
  - [ ephemeral0, /mnt ]
  - [ "/dev/disk/by-label/my data", "/srv/my data", auto, "defaults,nofail", "0", "0" ]
swap:
  size: 64M
`), 0o644)
	oldFstab, _ := os.ReadFile(filepath.Join(b.top, b.rootPath, "etc/fstab"))
	r := runCLI(t, b.root, seed, "")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.out)
	}
	if !strings.Contains(r.out, "placed at /var/lib/swap/swap.img instead of /swap.img") || !strings.Contains(r.out, "ephemeral0 is resolved only by a cloud's block-device-mapping") {
		t.Errorf("the output does not say where the swap file went and why, or what was skipped:\n%s", r.out)
	}
	_, p := b.defaultSubvol(t)
	newRoot := filepath.Join(b.top, p)
	fstab, _ := os.ReadFile(filepath.Join(newRoot, "etc/fstab"))
	want := string(oldFstab) +
		"/dev/vdz\t/mnt/data\text4\tdefaults,nofail,comment=cloudconfig\t0\t2\n" +
		"/dev/disk/by-label/my\\040data\t/srv/my\\040data\tauto\tdefaults,nofail,comment=cloudconfig\t0\t0\n" +
		"/var/lib/swap/swap.img\tnone\tswap\tsw,comment=cloudconfig\t0\t0\n"
	if string(fstab) != want {
		t.Errorf("fstab\n%s\nwant\n%s", fstab, want)
	}
	for _, d := range []string{"mnt/data", "srv/my data"} {
		if st, err := os.Stat(filepath.Join(newRoot, d)); err != nil || !st.IsDir() {
			t.Errorf("mount point /%s: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(newRoot, "swap.img")); err == nil {
		t.Error("a swap file in the snapshotted root")
	}
	// findmnt checks sources and targets against this machine, which has
	// neither; what it must not find is a line it cannot parse.
	out, _ := exec.Command("findmnt", "--fstab", "--verify", "--verbose", "--tab-file", filepath.Join(newRoot, "etc/fstab")).CombinedOutput()
	if !strings.Contains(string(out), "0 parse errors") || !strings.Contains(string(out), "/srv/my data") || !strings.Contains(string(out), "/var/lib/swap/swap.img") {
		t.Errorf("findmnt --verify:\n%s", out)
	}

	swap := filepath.Join(b.top, b.varPath, "lib/swap/swap.img")
	st, err := os.Stat(swap)
	if err != nil || st.Size() != 64<<20 || st.Mode().Perm() != 0o600 {
		t.Fatalf("swap file: %v %v", st, err)
	}
	attrs := strings.Fields(sh(t, "lsattr", swap))[0]
	if !strings.Contains(attrs, "C") || strings.Contains(attrs, "c") {
		t.Errorf("lsattr %s: want No_COW (C) and no compression", attrs)
	}
	if out, err := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", swap).Output(); err != nil || strings.TrimSpace(string(out)) != "swap" {
		t.Errorf("blkid TYPE %q %v", out, err)
	}
	// swapon needs a kernel that lets this machine swap (a container may
	// not): skipped with the reason when refused for that.
	out, err = exec.Command("swapon", swap).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "Operation not permitted") {
			t.Skipf("swapon not permitted here: %s", out)
		}
		t.Fatalf("swapon refused the file: %v\n%s", err, out)
	}
	if out, err := exec.Command("swapoff", swap).CombinedOutput(); err != nil {
		t.Errorf("swapoff: %v\n%s", err, out)
	}
}
