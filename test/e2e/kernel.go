// Package e2e is the VM test tier: it builds an initramfs around our static
// binary for a real Debian kernel, btrfs root disks and seed images made by
// the real tools, boots them under qemu and inspects the disks afterwards.
// The tests only run with PROVISION_E2E=1 (see e2e_test.go).
package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Arch describes one target architecture of the VM tier.
type Arch struct {
	Name      string // Debian architecture: amd64, arm64
	KernelPkg string // the meta package whose dependency names the real one
	QEMU      string
	// MachineArgs select machine, CPU and accelerator.
	MachineArgs []string
	Console     string // console= device
}

// AMD64 is tier A's architecture. /dev/kvm exists on the CI machines but
// hangs, so it is plain TCG.
var AMD64 = Arch{
	Name:        "amd64",
	KernelPkg:   "linux-image-amd64",
	QEMU:        "qemu-system-x86_64",
	MachineArgs: []string{"-accel", "tcg", "-m", "512"},
	Console:     "ttyS0",
}

// Kernel is an unpacked Debian kernel package with its modules indexed.
type Kernel struct {
	Version string // 6.1.0-56-amd64
	Vmlinuz string
	Root    string // where the package was unpacked (lib/modules/VERSION below it)
}

// ModDir is the kernel's module directory.
func (k *Kernel) ModDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// CacheDir is where downloaded packages and unpacked kernels are kept
// between runs.
func CacheDir() string {
	if d := os.Getenv("PROVISION_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/provision-e2e"
}

func run(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// versionedKernelPackage asks apt which versioned image package the meta
// package depends on (linux-image-amd64 -> linux-image-6.1.0-56-amd64).
func versionedKernelPackage(meta string, aptArgs []string) (string, error) {
	out, err := run("", "apt-cache", append(aptArgs, "depends", meta)...)
	if err != nil {
		return "", err
	}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s: no linux-image-* dependency in:\n%s", meta, out)
}

// FetchKernel downloads the architecture's current Debian kernel with
// apt-get download, unpacks it with dpkg -x and runs depmod -b, once per
// cache directory.
func FetchKernel(a Arch, aptArgs []string) (*Kernel, error) {
	pkg, err := versionedKernelPackage(a.KernelPkg, aptArgs)
	if err != nil {
		return nil, err
	}
	version := strings.TrimPrefix(pkg, "linux-image-")
	dir := filepath.Join(CacheDir(), "kernel-"+version)
	k := &Kernel{Version: version, Vmlinuz: filepath.Join(dir, "boot", "vmlinuz-"+version), Root: dir}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return k, nil
	}
	deb, err := aptDownload(pkg, a.Name, aptArgs)
	if err != nil {
		return nil, err
	}
	// Unpack beside and rename: a run interrupted halfway leaves no
	// half-unpacked kernel that looks complete.
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if _, err := run("", "dpkg", "-x", deb, tmp); err != nil {
		return nil, err
	}
	if _, err := run("", "depmod", "-b", tmp, version); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return k, nil
}

// aptDownload fetches one package into the cache's download directory,
// reusing a file already there.
func aptDownload(pkg, arch string, aptArgs []string) (string, error) {
	dl := filepath.Join(CacheDir(), "dl")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return "", err
	}
	// apt-get download needs "pkg:arch" for a foreign architecture.
	name := pkg
	if arch != "" {
		name = pkg + ":" + arch
	}
	glob := func() string {
		m, _ := filepath.Glob(filepath.Join(dl, pkg+"_*_"+arch+".deb"))
		sort.Strings(m)
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1]
	}
	if f := glob(); f != "" {
		return f, nil
	}
	if _, err := run(dl, "apt-get", append(aptArgs, "download", name)...); err != nil {
		return "", err
	}
	if f := glob(); f != "" {
		return f, nil
	}
	return "", fmt.Errorf("apt-get download %s left no %s_*_%s.deb in %s", name, pkg, arch, dl)
}

// ModuleSet resolves module names to .ko files in load order.
type ModuleSet struct {
	deps    map[string][]string // module name -> its direct dependencies (names)
	path    map[string]string   // module name -> path relative to ModDir
	builtin map[string]bool
}

func modName(p string) string {
	b := filepath.Base(p)
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, ext)
	}
	return strings.ReplaceAll(strings.TrimSuffix(b, ".ko"), "-", "_")
}

// LoadModules reads modules.dep and modules.builtin of the kernel.
func LoadModules(k *Kernel) (*ModuleSet, error) {
	m := &ModuleSet{deps: map[string][]string{}, path: map[string]string{}, builtin: map[string]bool{}}
	dep, err := os.ReadFile(filepath.Join(k.ModDir(), "modules.dep"))
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(dep), "\n") {
		mod, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n := modName(mod)
		m.path[n] = mod
		for _, d := range strings.Fields(rest) {
			m.deps[n] = append(m.deps[n], modName(d))
		}
	}
	if b, err := os.ReadFile(filepath.Join(k.ModDir(), "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			m.builtin[modName(line)] = true
		}
	}
	return m, nil
}

// Resolve returns the module files to load for the named modules, every
// module after its dependencies, each once. Built-in modules are skipped;
// unknown ones are an error.
func (m *ModuleSet) Resolve(names []string) ([]string, error) {
	var order []string
	seen := map[string]bool{}
	var errs []error
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		p, ok := m.path[n]
		if !ok {
			if !m.builtin[n] {
				errs = append(errs, fmt.Errorf("module %s: neither in modules.dep nor built in", n))
			}
			return
		}
		for _, d := range m.deps[n] {
			visit(d)
		}
		order = append(order, p)
	}
	for _, n := range names {
		visit(strings.ReplaceAll(n, "-", "_"))
	}
	return order, errors.Join(errs...)
}
