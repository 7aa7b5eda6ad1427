package e2e

// Tier B: the MicroOS way. A Debian bookworm root made by debootstrap, with
// the real systemd, udev and dracut, in a snapper layout on btrfs; its
// initramfs is built by dracut INSIDE that root with our dracut module, and
// the machine boots under qemu until the root's systemd reaches
// multi-user.target and powers off.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TierBSuite, TierBMirror and TierBPackages define the debootstrapped root;
// they are part of the cache key, so changing them rebuilds it.
const (
	TierBSuite  = "bookworm"
	TierBMirror = "http://deb.debian.org/debian"
)

// TierBPackages are installed on top of the minbase variant. The kernel is
// not among them: the root gets tier A's cached kernel (the same one that
// is booted), which also keeps the kernel's postinst from running dracut.
// The SELinux packages (refpolicy compiled by the postinst into
// /etc/selinux/default, setfiles, getenforce) are for the faithful
// A-selinux scenario; they leave /etc/selinux/config at SELINUX=disabled,
// so every other scenario boots and provisions without a policy.
var TierBPackages = []string{"systemd", "systemd-sysv", "udev", "kmod", "btrfs-progs", "dracut", "dracut-core",
	"selinux-policy-default", "policycoreutils", "selinux-utils",
	// sshd and ssh: the guest logs in with the key the run authorized.
	"openssh-server", "openssh-client"}

// tierBFormat is bumped whenever DebootstrapRoot changes what it caches.
const tierBFormat = "3"

// TierBDracutArgs are the dracut flags the issue measured: a non-host-only
// image limited to the drivers the VM needs (--add-drivers would pull
// every module in, 83 s and 40 MB instead of about 12 s). overlay is for
// the /etc overlay of faithful variant B (SLE/Leap Micro 5.x).
var TierBDracutArgs = []string{
	"--force", "--no-hostonly", "--no-hostonly-cmdline",
	"--drivers", "virtio_blk virtio_pci btrfs vfat nls_cp437 nls_iso8859-1 nls_ascii nls_utf8 isofs overlay",
	"-m", "systemd-initrd dracut-systemd rootfs-block btrfs udev-rules kernel-modules base fs-lib provision combustion-standin",
}

// tierBModuleSkip are kernel module trees the VMs never use; leaving them
// out of the root saves about 190 MB per disk.
var tierBModuleSkip = []string{
	"kernel/sound", "kernel/drivers/gpu", "kernel/drivers/media", "kernel/drivers/infiniband",
	"kernel/drivers/iio", "kernel/drivers/staging", "kernel/drivers/net/wireless",
	"kernel/drivers/net/ethernet",
}

// Timings records how long the expensive steps took, for the test log.
type Timings struct {
	mu    sync.Mutex
	steps []string
}

// Add records one step.
func (t *Timings) Add(step string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.steps = append(t.steps, fmt.Sprintf("%s: %s", step, d.Round(100*time.Millisecond)))
}

// String lists the steps in the order they were recorded.
func (t *Timings) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.steps, "; ")
}

func tierBCacheKey(k *Kernel) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00%s", tierBFormat, TierBSuite, TierBMirror,
		strings.Join(TierBPackages, ","), k.Version, strings.Join(tierBModuleSkip, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// DebootstrapRoot returns a tarball of the Debian root with the kernel's
// modules installed, building it on the first call per cache directory
// (about a minute; the tarball is reused by every later run).
func DebootstrapRoot(k *Kernel, tm *Timings) (string, error) {
	tarball := filepath.Join(CacheDir(), "tierb-"+TierBSuite+"-"+tierBCacheKey(k)+".tar")
	if _, err := os.Stat(tarball); err == nil {
		return tarball, nil
	}
	if err := os.MkdirAll(CacheDir(), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(CacheDir(), "tierb-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	start := time.Now()
	if _, err := run("", "debootstrap", "--variant=minbase", "--include="+strings.Join(TierBPackages, ","),
		TierBSuite, root, TierBMirror); err != nil {
		return "", err
	}
	tm.Add("debootstrap", time.Since(start))
	if err := installKernel(k, root); err != nil {
		return "", err
	}
	// Debootstrap leaves apt's downloads behind; they are not needed.
	_ = os.RemoveAll(filepath.Join(root, "var/cache/apt/archives"))
	_ = os.MkdirAll(filepath.Join(root, "var/cache/apt/archives/partial"), 0o755)
	part := tarball + ".part"
	if _, err := run("", "tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", part, "."); err != nil {
		return "", err
	}
	return tarball, os.Rename(part, tarball)
}

// installKernel copies the kernel, its config and its modules (less the
// trees no VM uses) into root and indexes them with depmod.
func installKernel(k *Kernel, root string) error {
	mods := filepath.Join(root, "usr/lib/modules")
	if err := os.MkdirAll(mods, 0o755); err != nil {
		return err
	}
	if _, err := run("", "cp", "-a", k.ModDir(), mods+"/"); err != nil {
		return err
	}
	for _, skip := range tierBModuleSkip {
		if err := os.RemoveAll(filepath.Join(mods, k.Version, skip)); err != nil {
			return err
		}
	}
	for _, f := range []string{"vmlinuz-", "config-", "System.map-"} {
		src := filepath.Join(k.Root, "boot", f+k.Version)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if _, err := run("", "cp", "-a", src, filepath.Join(root, "boot")+"/"); err != nil {
			return err
		}
	}
	_, err := run("", "depmod", "-b", root, k.Version)
	return err
}

// tierBReport is the root's boot reporter: it prints what came up, records
// the boot in the root it booted (so the disk says which subvolume that
// was) and lets the unit power the machine off.
const tierBReport = `#!/bin/sh
n=$(cat /var/lib/e2e/boots 2>/dev/null || echo 0)
n=$((n + 1))
mkdir -p /var/lib/e2e
echo "$n" > /var/lib/e2e/boots
echo "E2E-BOOTED boot=$n state=$(systemctl is-system-running)"
echo "E2E-CMDLINE $(cat /proc/cmdline)"
echo "E2E-ROOT $(btrfs subvolume show / 2>/dev/null | head -n 1)"
for m in / /var /home; do findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS --mountpoint "$m"; done | sed 's/^/E2E-MOUNT /'
systemctl --failed --no-legend --plain | sed 's/^/E2E-FAILED /'
echo "E2E-SELINUX $(getenforce 2>/dev/null || echo none)"
# A login with the key a faithful scenario's run authorized for carol.
if [ -r /root/e2e-ssh-key ] && command -v ssh >/dev/null; then
	systemctl start ssh.service 2>/dev/null
	if timeout 60 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-i /root/e2e-ssh-key carol@127.0.0.1 'echo E2E-SSH-LOGIN $(id -un) $(id -Z 2>/dev/null)' 2>&1; then
		:
	else
		echo "E2E-SSH-FAILED exit $?"
	fi
fi
if [ -e /sys/fs/selinux/enforce ]; then
	timeout 180 restorecon -nvR -e /.snapshots -e /run -e /proc -e /sys -e /dev / 2>&1 | head -n 100 | sed 's/^/E2E-RESTORECON /'
fi
echo "$n" >> /` + markerFile + `
journalctl --flush
sync
echo E2E-POWEROFF
`

const tierBUnit = `[Unit]
Description=e2e: report the boot and power off
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/e2e-report
ExecStartPost=/usr/bin/systemctl --no-block poweroff
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`

// TierBSystem is the prepared root (our binary and dracut module installed)
// and the initramfs dracut built inside it.
type TierBSystem struct {
	Root   string // the prepared tree on the host
	Kernel *Kernel
	Initrd string
}

// PrepareTierB unpacks the cached root into dir, installs binary and the
// dracut module (as `make install DESTDIR=` would), configures first boot,
// a persistent journal and the power-off unit, and runs dracut in a chroot.
func PrepareTierB(dir, tarball, binary, dracutModule string, k *Kernel, tm *Timings) (*TierBSystem, error) {
	root := filepath.Join(dir, "tierb-root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("", "tar", "--numeric-owner", "--xattrs", "-C", root, "-xf", tarball); err != nil {
		return nil, err
	}
	modDest := filepath.Join(root, "usr/lib/dracut/modules.d/50provision")
	if err := os.MkdirAll(modDest, 0o755); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"install", "-D", "-m", "0755", binary, filepath.Join(root, "usr/bin/provision")},
		{"install", "-m", "0755", filepath.Join(dracutModule, "module-setup.sh"), filepath.Join(dracutModule, "provision-initrd.sh"), modDest},
		{"install", "-m", "0644", filepath.Join(dracutModule, "provision.service"), filepath.Join(dracutModule, "combustion-skip.conf"), modDest},
	}
	for _, s := range steps {
		if _, err := run("", s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	t := Tree{
		// A first boot for systemd and for us: debootstrap wrote a real id.
		"etc/machine-id":                 {Mode: 0o444, Data: []byte("uninitialized\n")},
		"etc/hostname":                   {Mode: 0o644, Data: []byte("tierb\n")},
		"var/log/journal":                {Mode: os.ModeDir | 0o2755},
		"usr/local/sbin/e2e-report":      {Mode: 0o755, Data: []byte(tierBReport)},
		"etc/systemd/system/e2e.service": {Mode: 0o644, Data: []byte(tierBUnit)},
		"etc/systemd/system/multi-user.target.wants/e2e.service": {Link: "/etc/systemd/system/e2e.service"},
		// Combustion's units in the same initrd (a stand-in: Debian has no
		// Combustion): provision's drop-in must make them skip a medium
		// provision handled, so it is applied exactly once.
		"usr/lib/dracut/modules.d/95combustion-standin/module-setup.sh":    {Mode: 0o755, Data: []byte(combustionStandinSetup)},
		"usr/lib/dracut/modules.d/95combustion-standin/combustion.service": {Mode: 0o644, Data: []byte(combustionStandinUnit)},
		// Debian's post-switch-root relabel: -mark touches /.autorelabel
		// on every boot without SELinux (the root is read-only here), and
		// selinux-autorelabel.service (when /.autorelabel exists) relabels
		// everything and runs "systemctl --force reboot".
		// MicroOS has neither; the A-selinux scenario labels at build time.
		"etc/systemd/system/selinux-autorelabel-mark.service": {Link: "/dev/null"},
		"etc/systemd/system/selinux-autorelabel.service":      {Link: "/dev/null"},
		".snapshots":               {Mode: os.ModeDir | 0o750},
		"etc/snapper/configs/root": {Mode: 0o640, Data: []byte("SUBVOLUME=\"/\"\nFSTYPE=\"btrfs\"\nNUMBER_CLEANUP=\"yes\"\n")},
	}
	if err := t.WriteDir(root); err != nil {
		return nil, err
	}
	sys := &TierBSystem{Root: root, Kernel: k, Initrd: filepath.Join(dir, "tierb-initrd.img")}
	start := time.Now()
	out, err := chrootRun(root, append([]string{"dracut"}, append(TierBDracutArgs, "--kver", k.Version, "/boot/tierb-initrd.img")...)...)
	tm.Add("dracut", time.Since(start))
	if err != nil {
		return nil, err
	}
	if !strings.Contains(out, "provision") {
		// dracut -m names missing modules only as a warning.
		if lsOut, lerr := chrootRun(root, "lsinitrd", "/boot/tierb-initrd.img"); lerr == nil && !strings.Contains(lsOut, "usr/bin/provision") {
			return nil, fmt.Errorf("dracut built an initramfs without our module:\n%s", out)
		}
	}
	if err := os.Rename(filepath.Join(root, "boot/tierb-initrd.img"), sys.Initrd); err != nil {
		return nil, err
	}
	return sys, nil
}

// chrootRun runs a command in root with /proc, /sys and /dev bind-mounted,
// unmounting them again afterwards.
func chrootRun(root string, args ...string) (string, error) {
	var mounted []string
	defer func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			_, _ = run("", "umount", "-l", mounted[i])
		}
	}()
	for _, m := range []struct{ src, dst, typ string }{
		{"proc", "proc", "proc"}, {"sysfs", "sys", "sysfs"}, {"/dev", "dev", "bind"},
	} {
		dst := filepath.Join(root, m.dst)
		var err error
		if m.typ == "bind" {
			_, err = run("", "mount", "--rbind", m.src, dst)
			if err == nil {
				_, err = run("", "mount", "--make-rslave", dst)
			}
		} else {
			_, err = run("", "mount", "-t", m.typ, m.src, dst)
		}
		if err != nil {
			return "", err
		}
		mounted = append(mounted, dst)
	}
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root", "TMPDIR=/var/tmp"}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return buf.String(), fmt.Errorf("chroot %s %s: %w\n%s", root, strings.Join(args, " "), err, buf.String())
	}
	return buf.String(), nil
}

// TierBDisk is a tier B root disk: the prepared root in snapshot 1 of a
// snapper layout, /var and /home in @/var and @/home.
type TierBDisk struct {
	Path string
	UUID string
}

// tierBFstab names every filesystem by UUID, as an installer writes it;
// /var carries x-initrd.mount like MicroOS (the initrd mounts it before
// switching root, after our job).
func tierBFstab(uuid string) string {
	return fmt.Sprintf("UUID=%[1]s / btrfs defaults 0 0\n"+
		"UUID=%[1]s /.snapshots btrfs subvol=/@/.snapshots 0 0\n"+
		"UUID=%[1]s /var btrfs subvol=/@/var,x-initrd.mount 0 0\n"+
		"UUID=%[1]s /home btrfs subvol=/@/home 0 0\n", uuid)
}

// BuildTierBDisk makes a sparse 3 GiB btrfs image in dir from the prepared
// root.
func BuildTierBDisk(dir string, sys *TierBSystem) (*TierBDisk, error) {
	d := &TierBDisk{Path: filepath.Join(dir, "root.img"), UUID: newUUID()}
	if err := os.WriteFile(d.Path, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(d.Path, 3<<30); err != nil {
		return nil, err
	}
	if _, err := run("", "mkfs.btrfs", "-q", "-L", RootLabel, "-U", d.UUID, d.Path); err != nil {
		return nil, err
	}
	top := filepath.Join(dir, "root-mnt")
	if err := os.MkdirAll(top, 0o755); err != nil {
		return nil, err
	}
	if _, err := run("", "mount", "-o", "loop", d.Path, top); err != nil {
		return nil, err
	}
	err := tierBLayout(top, sys.Root, d.UUID)
	if _, uerr := run("", "umount", top); err == nil {
		err = uerr
	}
	return d, err
}

func tierBLayout(top, stage, uuid string) error {
	snap := filepath.Join(top, "@/.snapshots/1/snapshot")
	steps := [][]string{
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/.snapshots")},
		{"mkdir", "-p", filepath.Join(top, "@/.snapshots/1")},
		{"btrfs", "-q", "subvolume", "create", snap},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/var")},
		{"btrfs", "-q", "subvolume", "create", filepath.Join(top, "@/home")},
		{"cp", "-a", stage + "/.", snap},
		// /var and /home belong in their subvolumes; the snapshot keeps
		// empty mount points.
		{"cp", "-a", stage + "/var/.", filepath.Join(top, "@/var")},
		{"cp", "-a", stage + "/home/.", filepath.Join(top, "@/home")},
		{"find", filepath.Join(snap, "var"), filepath.Join(snap, "home"), "-mindepth", "1", "-delete"},
	}
	for _, s := range steps {
		if _, err := run("", s[0], s[1:]...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(snap, "etc/fstab"), []byte(tierBFstab(uuid)), 0o644); err != nil {
		return err
	}
	info := "<?xml version=\"1.0\"?>\n<snapshot>\n  <type>single</type>\n  <num>1</num>\n" +
		"  <date>2024-01-01 00:00:00</date>\n  <description>first root filesystem</description>\n</snapshot>\n"
	if err := os.WriteFile(filepath.Join(top, "@/.snapshots/1/info.xml"), []byte(info), 0o644); err != nil {
		return err
	}
	out, err := run("", "btrfs", "subvolume", "list", top)
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`(?m)^ID (\d+) .* path @/\.snapshots/1/snapshot$`).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("snapshot 1 not in the subvolume list:\n%s", out)
	}
	_, err = run("", "btrfs", "subvolume", "set-default", m[1], top)
	return err
}

// TierBVM is one boot of a tier B machine: -machine q35 -cpu max under TCG
// (/dev/kvm hangs here, and the kvm modules are blacklisted in the guest
// for the same reason), the serial console on stdio and no other devices
// but the disks.
type TierBVM struct {
	Kernel  string
	Initrd  string
	Disk    *TierBDisk
	Seeds   []string
	Cmdline []string
	// Root are the words that name the root, as a boot loader entry's
	// options line gives them (root=, rootflags=...); nil means
	// "root=UUID=<Disk.UUID> rootfstype=btrfs ro" (the default subvolume
	// decides, as with SUSE's GRUB).
	Root []string
	// Net, when set, is a -netdev value (qemu's "user" networking: the
	// host's loopback is 10.0.2.2 to the guest).
	Net     string
	Timeout time.Duration
}

// Args is the qemu command line.
func (vm *TierBVM) Args() []string {
	root := vm.Root
	if root == nil {
		root = []string{"root=UUID=" + vm.Disk.UUID, "rootfstype=btrfs", "ro"}
	}
	cmdline := append(append(append([]string(nil), root...), "console=ttyS0"), vm.harnessCmdline()...)
	return vm.qemuArgs(cmdline)
}

// harnessCmdline are the words every tier B boot gets besides the root.
func (vm *TierBVM) harnessCmdline() []string {
	return append([]string{
		"panic=-1",
		"modprobe.blacklist=kvm,kvm_amd,kvm_intel", "systemd.mask=serial-getty@ttyS0.service",
		// systemd-firstboot would prompt on the console on a first boot.
		"systemd.firstboot=off",
		// A failure in the initrd powers off instead of waiting for a shell.
		"rd.shell=0", "rd.emergency=poweroff",
	}, vm.Cmdline...)
}

func (vm *TierBVM) qemuArgs(cmdline []string) []string {
	args := []string{
		"-accel", "tcg", "-machine", "q35", "-cpu", "max", "-m", "1024", "-smp", "1",
		"-nodefaults", "-no-reboot", "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-kernel", vm.Kernel, "-initrd", vm.Initrd, "-append", strings.Join(cmdline, " "),
		"-drive", "file=" + vm.Disk.Path + ",if=virtio,format=raw",
	}
	for _, s := range vm.Seeds {
		args = append(args, "-drive", "file="+s+",if=virtio,format=raw,readonly=on")
	}
	if vm.Net != "" {
		args = append(args, "-netdev", vm.Net+",id=n0", "-device", "virtio-net-pci,netdev=n0")
	}
	return args
}

// Boot runs qemu until the guest powers off or the hard timeout passes
// (dracut waits forever for a missing root). A timeout is reported in the
// result, not as an error: the caller judges by the disk.
func (vm *TierBVM) Boot(ctx context.Context, log io.Writer) (*BootResult, error) {
	timeout := vm.Timeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, AMD64.QEMU, vm.Args()...)
	var buf bytes.Buffer
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		buf.Write(p)
		return log.Write(p)
	})
	cmd.Stdout, cmd.Stderr = w, w
	fmt.Fprintf(log, "+ %s %s\n", AMD64.QEMU, strings.Join(vm.Args(), " "))
	start := time.Now()
	err := cmd.Run()
	res := &BootResult{Elapsed: time.Since(start)}
	mu.Lock()
	res.Console = buf.String()
	mu.Unlock()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		res.TimedOut = true
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", AMD64.QEMU, err)
	}
	return res, nil
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// JournalEntry is one line of `journalctl -o short-monotonic`.
type JournalEntry struct {
	Mono float64 // seconds since boot
	Text string  // the rest of the line: host, identifier, message
}

var monoRe = regexp.MustCompile(`^\[\s*(\d+\.\d+)\]\s+(.*)$`)

// ReadJournal reads the persistent journal of a root from the host.
func ReadJournal(dir string) ([]JournalEntry, string, error) {
	out, err := run("", "journalctl", "-D", dir, "--no-pager", "-o", "short-monotonic")
	if err != nil {
		return nil, out, err
	}
	return ParseJournal(out), out, nil
}

// ParseJournal parses `journalctl -o short-monotonic` output; lines that
// are not entries (the "-- Boot ... --" separators) are skipped.
func ParseJournal(out string) []JournalEntry {
	var es []JournalEntry
	for _, line := range strings.Split(out, "\n") {
		m := monoRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			continue
		}
		es = append(es, JournalEntry{Mono: f, Text: m[2]})
	}
	return es
}

// FirstIndex is the index of the first entry containing s, or -1.
func FirstIndex(es []JournalEntry, s string) int {
	for i, e := range es {
		if strings.Contains(e.Text, s) {
			return i
		}
	}
	return -1
}

// CombustionStandinRan is what the stand-in combustion.service logs if it
// runs; CombustionSkipped is in systemd's message when provision's drop-in
// made it skip.
const (
	CombustionStandinRan = "E2E-COMBUSTION-STANDIN-RAN"
	CombustionSkipped    = "ConditionPathExists=!/run/provision/combustion-handled"
)

const combustionStandinSetup = `#!/bin/bash
check() { return 0; }
depends() { echo systemd; }
install() {
	inst_simple "${moddir}/combustion.service" "${systemdsystemunitdir}/combustion.service"
	mkdir -p "${initdir}${systemdsystemunitdir}/initrd.target.requires"
	ln_r "${systemdsystemunitdir}/combustion.service" "${systemdsystemunitdir}/initrd.target.requires/combustion.service"
}
`

// combustionStandinUnit is ordered like Combustion's unit (after the root
// device, before the initrd reads the target's fstab) and has no
// condition of its own, as Combustion's has none.
const combustionStandinUnit = `[Unit]
Description=Combustion stand-in (e2e)
DefaultDependencies=no
After=initrd-root-device.target sysroot.mount
Before=initrd-parse-etc.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo ` + CombustionStandinRan + ` > /dev/kmsg'
`
