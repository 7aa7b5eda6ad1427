package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/provision/report"
)

// tierC is what every aarch64 boot shares.
type tierC struct {
	kernel  *Kernel
	busybox string // the arm64 busybox-static
	binary  string // our arm64 build
	initrd  string
}

// needToolsC returns why tier C cannot run here, or "".
func needToolsC() string {
	if os.Getenv(gateEnv) != "1" {
		return "VM tests (tier C, aarch64) are off: set " + gateEnv + "=1 to boot Debian's arm64 kernel under qemu-system-aarch64 (needs root, qemu-system-arm, btrfs-progs, dosfstools, mtools, apt-get, dpkg, kmod)"
	}
	if os.Geteuid() != 0 {
		return "VM tests need root (loop-mounting the btrfs root image after each boot)"
	}
	tools := []string{ARM64.QEMU, "mkfs.btrfs", "btrfs", "mkfs.vfat", "mcopy", "apt-get", "apt-cache", "apt-config", "dpkg", "depmod", "mount"}
	if os.Getenv("PROVISION_E2E_BINARY_ARM64") == "" {
		tools = append(tools, "go")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("VM tests (tier C) need %s in PATH: %v", tool, err)
		}
	}
	return ""
}

// setupC builds tier C's shared pieces into dir, logging how long each took.
func setupC(t *testing.T, dir string) *tierC {
	t.Helper()
	c := &tierC{}
	step := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("tier C setup: %s took %s", what, time.Since(start).Round(10*time.Millisecond))
	}
	step("arm64 build of ./cmd/provision", func() error {
		c.binary = os.Getenv("PROVISION_E2E_BINARY_ARM64")
		if c.binary != "" {
			return nil
		}
		c.binary = filepath.Join(dir, "provision-arm64")
		cmd := exec.Command("go", "build", "-trimpath", "-o", c.binary, "./cmd/provision")
		cmd.Dir = "../.." // the module root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		return nil
	})
	var apt []string
	step("arm64 apt configuration", func() (err error) {
		apt, err = ForeignAPT(ARM64.Name, 24*time.Hour)
		return err
	})
	step("arm64 kernel", func() (err error) {
		c.kernel, err = FetchKernel(ARM64, apt)
		if err != nil {
			// Lists up to a day old may name a kernel the archive has
			// since dropped: refresh them once and retry.
			t.Logf("tier C: %v; refreshing the arm64 package lists", err)
			if apt, err = ForeignAPT(ARM64.Name, 0); err != nil {
				return err
			}
			c.kernel, err = FetchKernel(ARM64, apt)
		}
		return err
	})
	step("arm64 busybox-static", func() error {
		d, err := FetchDeb("busybox-static", ARM64.Name, apt)
		c.busybox = filepath.Join(d, "bin", "busybox")
		return err
	})
	// A wrong-architecture binary would only show as "init died" on the
	// console; say it plainly instead.
	for _, f := range []string{c.binary, c.busybox} {
		if m, err := ELFMachine(f); err != nil || m != ELFAArch64 {
			t.Fatalf("%s: ELF machine %d (%v), want AArch64 (%d)", f, m, err, ELFAArch64)
		}
	}
	step("arm64 initramfs", func() error {
		c.initrd = filepath.Join(dir, "initrd-arm64.cpio")
		return BuildInitramfs(c.initrd, c.kernel, c.busybox, c.binary, TierCModules)
	})
	t.Logf("tier C: kernel %s, initramfs %s", c.kernel.Version, sizeOf(c.initrd))
	return c
}

func sizeOf(p string) string {
	fi, err := os.Stat(p)
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(fi.Size())/(1<<20))
}

// machine makes a fresh arm64 root disk in a test's own directory.
func (c *tierC) machine(t *testing.T, layout Layout) *machine {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	disk, err := BuildRootFor(dir, c.busybox, TierCApplets, RootOptions{Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tier C: root disk built in %s", time.Since(start).Round(10*time.Millisecond))
	return &machine{t: t, dir: dir, disk: disk, vm: VM{
		Arch: ARM64, Kernel: c.kernel.Vmlinuz, Initrd: c.initrd, Root: disk,
		// About 5 s a boot on an idle machine; the CI cores are shared.
		Timeout: 120 * time.Second,
	}}
}

// TestTierC boots Debian's arm64 kernel on qemu's virt board with our arm64
// build as the initramfs' provisioner. The shared pieces are built once;
// each scenario is a subtest with its own disk.
func TestTierC(t *testing.T) {
	if why := needToolsC(); why != "" {
		t.Skip(why)
	}
	c := setupC(t, t.TempDir())

	// (a) A FAT USB stick labelled "combustion" whose script copies a
	// sibling file, adds a user and writes to /var, on a MicroOS (snapper)
	// layout, as openSUSE ships for the Raspberry Pi.
	t.Run("combustion-usb", func(t *testing.T) {
		m := c.machine(t, Snapper)
		stick, err := CombustionStick(m.dir, Tree{
			"script": {Mode: 0o755, Data: []byte(`#!/bin/sh
set -e
echo "e2e-tierc: script running on $(uname -m) in $(pwd)"
cp hello.txt /etc/hello-from-stick.txt
uname -m > /etc/e2e-arch
# Debian's busybox has no adduser and the root has no shadow-utils: add
# the user the way a minimal image's script would.
echo 'pi:x:1000:1000:Pi User:/home/pi:/bin/sh' >> /etc/passwd
echo 'pi:!:19000:0:99999:7:::' >> /etc/shadow
echo 'pi:x:1000:' >> /etc/group
mkdir -p /var/lib/e2e-combustion
echo done > /var/lib/e2e-combustion/ran
`)},
			"hello.txt": {Mode: 0o644, Data: []byte("hello from the stick\n")},
		})
		if err != nil {
			t.Fatal(err)
		}
		m.vm.Seeds = []string{stick}
		// A failed run reboots, which -no-reboot turns into a qemu exit:
		// the test fails on the disk at once instead of waiting out the
		// timeout in the emergency shell.
		m.vm.Cmdline = []string{"provision.on_failure=reboot"}
		res := m.boot()
		// qemu exits 0 after a guest panic too: the console only helps
		// explain a failure, the disk decides.
		wantOK(t, res)
		if strings.Contains(res.Console, "[FAILED]") {
			t.Error("console shows a [FAILED] step")
		}
		wantContains(t, "console (the script's own output)", res.Console, "e2e-tierc: script running on aarch64")

		in, _ := m.inspect()
		wantNewDefault(t, in, Snapper)
		wantBootedOnce(t, in)
		if got := in.read(t, "/etc/hello-from-stick.txt"); got != "hello from the stick\n" {
			t.Errorf("/etc/hello-from-stick.txt = %q", got)
		}
		if got := strings.TrimSpace(in.read(t, "/etc/e2e-arch")); got != "aarch64" {
			t.Errorf("the script ran on %q, want aarch64", got)
		}
		wantContains(t, "/etc/passwd", in.read(t, "/etc/passwd"), "\npi:x:1000:1000:Pi User:/home/pi:/bin/sh\n")
		wantContains(t, "/etc/shadow", in.read(t, "/etc/shadow"), "\npi:")
		// /var is @/var in this layout: the write must be there, not under
		// the mount point inside the snapshot.
		if got := in.read(t, "/var/lib/e2e-combustion/ran"); got != "done\n" {
			t.Errorf("/var/lib/e2e-combustion/ran = %q", got)
		}
		if _, err := os.Stat(filepath.Join(in.Root(), "var/lib/e2e-combustion")); err == nil {
			t.Error("the script's /var write landed inside the snapshot, under the @/var mount point")
		}

		// The report in the booted system's /var/log/provision.
		data, err := os.ReadFile(in.path(report.TargetJSON))
		if err != nil {
			t.Errorf("after boot: %v", err)
			// Say where it went instead; a copy hidden under the @/var
			// mount point is still checked below.
			hidden := filepath.Join(in.Root(), report.TargetJSON)
			if data, err = os.ReadFile(hidden); err != nil {
				t.Fatalf("report.json files anywhere in the image: %q", findAll(in.Top, "report.json"))
			}
			t.Errorf("the report was written into the snapshot's own %s, which the @/var mount hides in the booted system", report.TargetDir)
		}
		r, err := report.Parse(report.TargetJSON, data)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != report.StatusDone || r.Error != nil {
			t.Errorf("report: status %q, error %+v; want %q without error", r.Status, r.Error, report.StatusDone)
		}
		var origins []string
		for _, d := range r.Documents {
			origins = append(origins, d.Origin)
		}
		if !strings.Contains(strings.Join(origins, " "), "combustion:/dev/vdb:script") {
			t.Errorf("report documents %q: the combustion script is not among them", origins)
		}
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(in.path(report.TargetJSON)), "provision.log"))
		if len(log) == 0 {
			log, _ = os.ReadFile(filepath.Join(in.Root(), report.TargetLog))
		}
		wantContains(t, "provision.log", string(log), "[ OK ] scripts:")
	})

	// (b) The same stick on a faithful Raspberry Pi layout (test/faithful E).
	t.Run("faithful-E", c.faithfulE)
}

// findAll lists the files named name below top (relative paths), to say
// where something landed when it is not where it should be.
func findAll(top, name string) []string {
	var found []string
	_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			rel, _ := filepath.Rel(top, p)
			found = append(found, rel)
		}
		return nil
	})
	return found
}
