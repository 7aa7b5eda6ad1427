package e2e

// Tier C: the aarch64 machine, the way provision runs on a Raspberry Pi.
// It reuses tier A's pieces (kernel fetch, module resolution, initramfs and
// root-disk builders, qemu runner, inspection) with Debian's arm64 packages,
// which are fetched through a private apt configuration so the host's dpkg
// architectures are never changed.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ARM64 is tier C's architecture: qemu's generic "virt" board with the
// Pi 4's CPU core. cortex-a72 boots about three times faster under TCG than
// -cpu max (no pointer authentication to emulate); one vCPU keeps the
// shared CI cores free. -nic none: scenario (a) needs no network.
var ARM64 = Arch{
	Name:        "arm64",
	KernelPkg:   "linux-image-arm64",
	QEMU:        "qemu-system-aarch64",
	MachineArgs: []string{"-M", "virt", "-cpu", "cortex-a72", "-smp", "1", "-m", "512", "-nic", "none"},
	Console:     "ttyAMA0",
}

// TierCModules are what the arm64 initramfs loads, in this order. The virt
// board's disks are virtio-pci (virtio_mmio is listed too: it is how the
// board exposes virtio without PCI, and costs nothing when unused). busybox
// insmod does not follow module softdeps, so btrfs's checksum drivers come
// before it. vfat needs nls_ascii on Debian kernels. Modules built into the
// kernel are skipped by Resolve.
var TierCModules = []string{
	"virtio_mmio", "virtio_pci", "virtio_blk",
	"crc32c_generic", "blake2b_generic", "xxhash_generic", "btrfs",
	"nls_cp437", "nls_iso8859-1", "nls_ascii", "nls_utf8", "vfat",
}

// TierCApplets are the busybox applets linked into the arm64 root. The
// arm64 busybox cannot run on the build host (no binfmt emulation is
// assumed), so `busybox --list` is not available and the list is fixed: the
// root's /sbin/init and the scenarios' scripts use these.
var TierCApplets = []string{
	"sh", "mount", "umount", "sed", "grep", "tr", "cat", "mkdir", "cp", "mv",
	"rm", "ls", "echo", "sync", "poweroff", "reboot", "uname", "id", "chmod", "chown", "ln", "touch", "sleep", "true", "false", "test", "[",
}

// ForeignAPT prepares an apt configuration for arch below the cache
// directory and returns the -o options that select it. Package lists,
// state and cache live in their own directories; the sources are copies of
// the host's. Nothing of the host's dpkg changes: no foreign architecture is
// added, and dpkg's status is an empty file of our own. The lists are
// refreshed with `apt-get update` when missing or older than maxAge.
func ForeignAPT(arch string, maxAge time.Duration) ([]string, error) {
	base := filepath.Join(CacheDir(), "apt-"+arch)
	state := filepath.Join(base, "state")
	cache := filepath.Join(base, "cache")
	etc := filepath.Join(base, "etc")
	for _, d := range []string{
		filepath.Join(state, "lists", "partial"),
		filepath.Join(cache, "archives", "partial"),
		filepath.Join(etc, "sources.list.d"),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	status := filepath.Join(state, "status")
	if _, err := os.Stat(status); err != nil {
		if err := os.WriteFile(status, nil, 0o644); err != nil {
			return nil, err
		}
	}
	if err := copyHostSources(etc); err != nil {
		return nil, err
	}
	args := foreignAPTArgs(arch, base)
	stamp := filepath.Join(base, "updated")
	if fi, err := os.Stat(stamp); err == nil && time.Since(fi.ModTime()) < maxAge {
		return args, nil
	}
	if _, err := run("", "apt-get", append(append([]string{}, args...), "-q", "update")...); err != nil {
		return nil, fmt.Errorf("apt-get update for %s: %w", arch, err)
	}
	return args, os.WriteFile(stamp, nil, 0o644)
}

// foreignAPTArgs are the options of a private apt configuration rooted at
// base. APT::Architectures limits the lists to arch alone; the host's
// apt.conf.d (proxies, keyrings) stays in effect.
func foreignAPTArgs(arch, base string) []string {
	o := func(k, v string) []string { return []string{"-o", k + "=" + v} }
	var args []string
	for _, kv := range [][2]string{
		{"APT::Architecture", arch},
		{"APT::Architectures", arch},
		{"Dir::State", filepath.Join(base, "state")},
		{"Dir::State::status", filepath.Join(base, "state", "status")},
		{"Dir::Cache", filepath.Join(base, "cache")},
		{"Dir::Etc::SourceList", filepath.Join(base, "etc", "sources.list")},
		{"Dir::Etc::SourceParts", filepath.Join(base, "etc", "sources.list.d")},
	} {
		args = append(args, o(kv[0], kv[1])...)
	}
	return args
}

// copyHostSources copies the host's sources.list and its enabled
// sources.list.d entries (*.list, *.sources) into etc, where apt looks for
// them, as apt-config names them.
func copyHostSources(etc string) error {
	out, err := run("", "apt-config", "shell", "LIST", "Dir::Etc::SourceList/f", "PARTS", "Dir::Etc::SourceParts/d")
	if err != nil {
		return err
	}
	vars := parseAPTConfigShell(out)
	list, parts := vars["LIST"], vars["PARTS"]
	if list == "" && parts == "" {
		return fmt.Errorf("apt-config names no sources:\n%s", out)
	}
	data, err := os.ReadFile(list)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "sources.list"), data, 0o644); err != nil {
		return err
	}
	dst := filepath.Join(etc, "sources.list.d")
	old, _ := os.ReadDir(dst)
	for _, e := range old {
		_ = os.Remove(filepath.Join(dst, e.Name()))
	}
	ents, err := os.ReadDir(parts)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	n := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".list") && !strings.HasSuffix(e.Name(), ".sources") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(parts, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
		n++
	}
	if len(strings.TrimSpace(string(data))) == 0 && n == 0 {
		return fmt.Errorf("the host has no apt sources (%s, %s/*.list, *.sources)", list, parts)
	}
	return nil
}

// parseAPTConfigShell reads `apt-config shell` output: NAME='value' lines,
// values single-quoted the shell's way (a quote inside is '\”).
func parseAPTConfigShell(out string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || name == "" {
			continue
		}
		if len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'' {
			val = strings.ReplaceAll(val[1:len(val)-1], `'\''`, `'`)
		}
		vars[name] = val
	}
	return vars
}

// FetchDeb downloads pkg for arch through aptArgs (cached like the kernel)
// and unpacks it once into the cache; it returns the unpacked tree.
func FetchDeb(pkg, arch string, aptArgs []string) (string, error) {
	deb, err := aptDownload(pkg, arch, aptArgs)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(CacheDir(), strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if _, err := run("", "dpkg", "-x", deb, tmp); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	_ = os.RemoveAll(dir)
	return dir, os.Rename(tmp, dir)
}

// ELFMachine returns the e_machine field of an ELF file: 183 is AArch64,
// 62 is x86-64. The tier checks its inputs with it, since a wrong-arch
// binary in the initramfs would only show as a kernel panic.
func ELFMachine(path string) (uint16, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var h [20]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if string(h[:4]) != "\x7fELF" || h[5] != 1 {
		return 0, fmt.Errorf("%s: not a little-endian ELF file", path)
	}
	return uint16(h[18]) | uint16(h[19])<<8, nil
}

// ELF e_machine values the tiers use.
const (
	ELFX8664   = 62
	ELFAArch64 = 183
)
