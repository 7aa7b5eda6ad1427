package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/test/faithful"
)

// faithfulE boots variant E of the faithful openSUSE roots (the Raspberry
// Pi layout: MBR, vfat EFI partition of type 0x0c, btrfs ROOT with
// noatime,compress=lzo, nested /etc subvolume, no quotas) on aarch64 with a
// Combustion stick, then again (nothing may run twice); a failing script on
// a fresh disk leaves nothing behind.
func (c *tierC) faithfulE(t *testing.T) {
	bb, err := os.ReadFile(c.busybox)
	if err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T) (*faithful.Disk, string) {
		dir := t.TempDir()
		stage := filepath.Join(dir, "stage")
		// The fstab is faithful's; the tree is tier C's busybox system.
		if err := baseRoot(bb, TierCApplets, "", Plain).WriteDir(stage); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		d, err := faithful.Build(dir, faithful.Options{Variant: faithful.E, Stage: stage, Size: 512 << 20})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("tier C: faithful E disk built in %s", time.Since(start).Round(10*time.Millisecond))
		return d, dir
	}
	boot := func(t *testing.T, d *faithful.Disk, dir, script string) *BootResult {
		stick, err := CombustionStick(dir, Tree{"script": {Mode: 0o755, Data: []byte(script)}})
		if err != nil {
			t.Fatal(err)
		}
		m := &machine{t: t, dir: dir, vm: VM{
			Arch: ARM64, Kernel: c.kernel.Vmlinuz, Initrd: c.initrd,
			Root: &RootDisk{Path: d.Path, UUID: d.UUID}, RootArg: "UUID=" + d.UUID,
			Seeds: []string{stick}, Cmdline: []string{"provision.on_failure=reboot"},
			Timeout: 120 * time.Second,
		}}
		return m.boot()
	}
	const good = `#!/bin/sh
set -e
echo "e2e-faithful-e: on $(uname -m)"
echo stick > /etc/from-stick
mkdir -p /var/lib/e2e-e && echo done > /var/lib/e2e-e/ran
`
	t.Run("combustion", func(t *testing.T) {
		d, dir := build(t)
		first := boot(t, d, dir, good)
		wantOK(t, first)
		s, err := faithful.Inspect(d)
		if err != nil {
			t.Fatal(err)
		}
		if s.Default != "@/.snapshots/2/snapshot" {
			t.Errorf("default %s after the first boot, want @/.snapshots/2/snapshot", s.Default)
		}
		if got, err := s.ReadEtc(2, "from-stick"); err != nil || got != "stick\n" {
			t.Errorf("/etc/from-stick of snapshot 2: %q %v", got, err)
		}
		if got, err := s.ReadEtc(2, "passwd"); err != nil || !strings.HasPrefix(got, "root:") {
			t.Errorf("snapshot 2's nested /etc is not complete: passwd %q %v", got, err)
		}
		if _, err := s.ReadEtc(1, "from-stick"); err == nil {
			t.Error("snapshot 1's /etc changed")
		}
		nested := false
		for _, sv := range s.Subvolumes {
			nested = nested || sv == "@/.snapshots/2/snapshot/etc"
		}
		if !nested {
			t.Errorf("snapshot 2 has no nested /etc subvolume: %v", s.Subvolumes)
		}
		if b, err := os.ReadFile(filepath.Join(s.Var, "lib/e2e-e/ran")); err != nil || string(b) != "done\n" {
			t.Errorf("/var/lib/e2e-e/ran in @/var: %q %v", b, err)
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/YaST2/reconfig_system")); err == nil {
			t.Error("reconfig_system still in /var after a successful first boot")
		}
		s.Close()

		second := boot(t, d, dir, good)
		if strings.Contains(second.Console, "transaction: committed") {
			t.Error("the second boot provisioned again")
		}
		s, err = faithful.Inspect(d)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Default != "@/.snapshots/2/snapshot" {
			t.Errorf("default %s after the second boot", s.Default)
		}
		for _, sv := range s.Subvolumes {
			if strings.Contains(sv, ".snapshots/3/") {
				t.Errorf("the second boot made %s", sv)
			}
		}
		t.Logf("tier C faithful E: first boot %s, second boot %s", first.Elapsed.Round(100*time.Millisecond), second.Elapsed.Round(100*time.Millisecond))
	})
	t.Run("failing-script", func(t *testing.T) {
		d, dir := build(t)
		res := boot(t, d, dir, "#!/bin/sh\necho half > /etc/half\nmkdir -p /var/lib/half\nexit 1\n")
		if strings.Contains(res.Console, "transaction: committed") {
			t.Error("a failing script committed")
		}
		s, err := faithful.Inspect(d)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Default != "@/.snapshots/1/snapshot" {
			t.Errorf("default %s after a failed run", s.Default)
		}
		for _, sv := range s.Subvolumes {
			if strings.Contains(sv, ".snapshots/2/") || strings.Contains(sv, ".provision") {
				t.Errorf("left behind: subvolume %s", sv)
			}
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/half")); err == nil {
			t.Error("the failed script's /var write survived")
		}
		if _, err := os.Stat(filepath.Join(s.Var, "lib/YaST2/reconfig_system")); err != nil {
			t.Errorf("reconfig_system gone after a failed run: %v", err)
		}
		t.Logf("tier C faithful E failing script: boot %s", res.Elapsed.Round(100*time.Millisecond))
	})
}
