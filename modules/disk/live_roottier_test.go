package disk

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
	"golang.org/x/sys/unix"
)

func needLoopPartitions(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("root tier: needs root (loop devices with partitions, mount)")
	}
	for _, tool := range []string{"losetup", "mount", "umount", "mkfs.btrfs", "sfdisk", "blockdev"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("root tier: %s is not installed", tool)
		}
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("root tier: no loop device support (/dev/loop-control)")
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestGrowLiveBtrfs is the Raspberry Pi case: an image written to a
// larger disk. A loop device with a GPT, btrfs on partition 2, mounted;
// the backing file grows, the loop device is refreshed, and the plan's
// growpart and resize_rootfs steps grow the partition, tell the kernel
// and grow the mounted btrfs. A second run changes nothing.
func TestGrowLiveBtrfs(t *testing.T) {
	needLoopPartitions(t)
	for _, label := range []string{"gpt", "dos"} {
		t.Run(label, func(t *testing.T) {
			img, loop, part, mnt := mountedPartition(t, 400<<20, "label: "+label+"\nstart=2048, size=16384\nsize=614400\n", 2, "mkfs.btrfs", "-q", "-f")

			// A config without the keys leaves the disk alone.
			if steps, _ := Plan(&config.Config{}, mnt); len(steps) != 0 {
				t.Fatalf("no growpart key, yet %v", steps)
			}

			if err := os.Truncate(img, 1<<30); err != nil {
				t.Fatal(err)
			}
			sh(t, "losetup", "-c", loop)
			partBefore := sh(t, "blockdev", "--getsize64", part)
			fsBefore := statfsSize(t, mnt)

			cfg := &config.Config{Growpart: &config.Growpart{Mode: "auto", Devices: []string{"/"}}}
			steps, err := Plan(cfg, mnt)
			if err != nil || len(steps) != 2 {
				t.Fatalf("plan: %v %v", steps, err)
			}
			want := "disk: grow partition 2 of " + loop + " (to the end of the disk: +715.0 MiB, after the commit)"
			if !strings.HasPrefix(steps[0].String(), want) {
				t.Errorf("plan line %q, want it to start with %q", steps[0], want)
			}
			var console bytes.Buffer
			if err := modules.ApplyAll(context.Background(), &modules.Env{Console: &console}, steps); err != nil {
				t.Fatalf("%v\n%s", err, console.String())
			}
			t.Log(console.String())

			// The table is the one growpart would have written: the
			// partition ends before the last 33 sectors.
			total := int64(1<<30) / 512
			dumpOut := sh(t, "sfdisk", "--dump", loop)
			wantSize := strconv.FormatInt(total-34-18432+1, 10)
			if !regexp.MustCompile(`p2 : start=\s*18432, size=\s*` + wantSize + `,`).MatchString(dumpOut) {
				t.Errorf("sfdisk --dump:\n%s\nwant partition 2 of size %s", dumpOut, wantSize)
			}
			partAfter := sh(t, "blockdev", "--getsize64", part)
			if partAfter == partBefore || partAfter != strconv.FormatInt((total-34-18432+1)*512, 10) {
				t.Errorf("the kernel's partition size %s (before %s)", partAfter, partBefore)
			}
			if fsAfter := statfsSize(t, mnt); fsAfter < fsBefore+500<<20 {
				t.Errorf("btrfs did not grow: %d -> %d", fsBefore, fsAfter)
			}
			if show, err := exec.Command("btrfs", "filesystem", "show", mnt).CombinedOutput(); err == nil {
				t.Logf("%s", show)
			}

			// Second run: NOCHANGE for both.
			steps, _ = Plan(cfg, mnt)
			if !strings.Contains(steps[0].Detail, "already at the end") {
				t.Errorf("second plan: %s", steps[0])
			}
			console.Reset()
			if err := modules.ApplyAll(context.Background(), &modules.Env{Console: &console}, steps); err != nil {
				t.Fatal(err)
			}
			if strings.Count(console.String(), "NOCHANGE") != 2 {
				t.Errorf("second run:\n%s", console.String())
			}
			if sh(t, "sfdisk", "--dump", loop) != dumpOut {
				t.Error("second run changed the table")
			}
		})
	}
}

// mountedPartition makes a disk image of size bytes partitioned by sfdisk
// with layout, attaches it to a loop device, makes a filesystem on
// partition n with mkfs (its arguments before the device) and mounts it;
// all of it is undone when the test ends. It skips when the loop
// device's partitions do not appear.
func mountedPartition(t *testing.T, size int64, layout string, n int, mkfs ...string) (img, loop, part, mnt string) {
	t.Helper()
	dir := t.TempDir()
	img = filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader(layout)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	loop = sh(t, "losetup", "-P", "-f", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	part = loop + "p" + strconv.Itoa(n)
	if _, err := os.Stat(part); err != nil {
		// Some kernels leave the scan of -P undone; partx adds the
		// partitions with BLKPG.
		exec.Command("partx", "-a", loop).Run()
	}
	if _, err := os.Stat(part); err != nil {
		t.Skipf("root tier: %s did not appear (no loop partition support here): %v", part, err)
	}
	sh(t, mkfs[0], append(mkfs[1:], part)...)
	mnt = filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	sh(t, "mount", part, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return img, loop, part, mnt
}

func statfsSize(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize
}

// TestGrowrootDisabled: the target's /etc/growroot-disabled stops growpart
// unless ignore_growroot_disabled.
func TestGrowrootDisabled(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/growroot-disabled"), nil, 0o644)
	cfg := &config.Config{Growpart: &config.Growpart{Mode: "auto", Devices: []string{"/"}}, ResizeRootfs: &config.ResizeRootfs{Mode: "false"}}
	steps, _ := Plan(cfg, root)
	if len(steps) != 1 || !strings.Contains(steps[0].Detail, "growroot-disabled") {
		t.Fatalf("%v", steps)
	}
	cfg.Growpart.IgnoreGrowrootDisabled = true
	steps, _ = Plan(cfg, root)
	// Not a mount point: the step says so and fails when applied.
	if len(steps) != 1 || !strings.Contains(steps[0].Detail, "not a mount point") {
		t.Fatalf("%v", steps)
	}
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err == nil {
		t.Error("growing a directory that is no mount point succeeded")
	}
}

func TestPlanDryRun(t *testing.T) {
	cfg := &config.Config{ResizeRootfs: &config.ResizeRootfs{Mode: "noblock"}}
	steps, _ := Plan(cfg, "")
	if len(steps) != 2 {
		t.Fatalf("%v", steps)
	}
	for _, s := range steps {
		if !strings.Contains(s.Detail, "decided at boot") {
			t.Errorf("dry-run line %q", s)
		}
	}
	cfg = &config.Config{Growpart: &config.Growpart{Mode: "off"}, ResizeRootfs: &config.ResizeRootfs{Mode: "false"}}
	if steps, _ := Plan(cfg, ""); len(steps) != 0 {
		t.Errorf("off and false: %v", steps)
	}
}

// TestGrowLiveExt4: the partition of an ext4 root grows as any other;
// the filesystem is not grown, and the step says which tool would.
func TestGrowLiveExt4(t *testing.T) {
	needLoopPartitions(t)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("root tier: mkfs.ext4 is not installed")
	}
	img, loop, part, mnt := mountedPartition(t, 64<<20, "label: gpt\nstart=2048, size=65536\n", 1, "mkfs.ext4", "-q")
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	sh(t, "losetup", "-c", loop)

	steps, _ := Plan(&config.Config{ResizeRootfs: &config.ResizeRootfs{Mode: "true"}}, mnt)
	if len(steps) != 2 {
		t.Fatalf("%v", steps)
	}
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatalf("growing the partition of an ext4 root: %v", err)
	}
	if got := sh(t, "blockdev", "--getsize64", part); got != strconv.FormatInt((128<<20/512-34-2048+1)*512, 10) {
		t.Errorf("partition size %s", got)
	}
	err := steps[1].Apply(context.Background(), &modules.Env{})
	if err == nil || !strings.Contains(err.Error(), "resize2fs") {
		t.Errorf("resizing ext4: %v", err)
	}
}
