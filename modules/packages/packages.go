// Package packages adds package repositories to the target and installs,
// refreshes and upgrades packages with the target's own package manager
// (zypper, dnf or apt) run inside the snapshot chroot.
//
// Repository files are written in the layout cloud-init's cc_zypper_add_repo,
// cc_yum_add_repo and cc_apt_configure produce for the same input (see
// repos.go for where and why we differ). The package commands run
// non-interactively through env.Exec; their output goes line by line to the
// console, and is also read, because exit statuses lie: dnf exits 0 when a
// %post scriptlet fails. None of the three managers undoes a half-done
// transaction, so any failure fails the step and the engine throws the
// snapshot away (SPEC §5).
package packages

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Module is the name steps carry.
const Module = "packages"

// Family is a kind of package manager; repositories name theirs.
type Family string

// The families this module drives.
const (
	Zypper Family = "zypper"
	DNF    Family = "dnf" // dnf, dnf5 and yum: they read /etc/yum.repos.d
	Apt    Family = "apt"
)

// Manager is the package manager found in a target.
type Manager struct {
	Family Family
	// Binary is the program inside the target ("/usr/bin/zypper").
	Binary string
	// Label is the console prefix word: "zypper", "dnf", "apt-get".
	Label string
}

// candidates are looked for in this order; the first present wins. dnf5
// without a dnf symlink is Fedora's minimal images; yum alone is EL7 and
// Amazon Linux 2, which take the same command line.
var candidates = []Manager{
	{Zypper, "/usr/bin/zypper", "zypper"},
	{DNF, "/usr/bin/dnf", "dnf"},
	{DNF, "/usr/bin/dnf5", "dnf"},
	{DNF, "/usr/bin/yum", "yum"},
	{Apt, "/usr/bin/apt-get", "apt-get"},
}

// Detect returns the target's package manager, or nil when it has none.
func Detect(root *rootfs.Root) *Manager {
	if root == nil {
		return nil
	}
	for _, c := range candidates {
		fi, err := root.Stat(c.Binary)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			m := c
			return &m
		}
	}
	return nil
}

// ErrNoManager is wrapped by the error for a target without a package manager.
var ErrNoManager = errors.New("the target has no package manager (looked for /usr/bin/zypper, /usr/bin/dnf, /usr/bin/dnf5, /usr/bin/yum, /usr/bin/apt-get)")

// target is what planning learns from the tree.
type target struct {
	root *rootfs.Root
	mgr  *Manager
	// bare is a tree with neither /usr/bin nor /bin: the stand-in base
	// tree of a dry run without --root, or no system at all. Nothing can
	// be known about its package manager, so the plan names commands
	// generically and anything it cannot resolve fails when applied.
	bare      bool
	osRelease map[string]string
}

func inspect(root *rootfs.Root) *target {
	t := &target{root: root, bare: true, osRelease: map[string]string{}}
	if root == nil {
		return t
	}
	t.mgr = Detect(root)
	t.bare = !isDir(root, "/usr/bin") && !isDir(root, "/bin")
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err := root.ReadFile(p); err == nil {
			t.osRelease = parseOSRelease(string(data))
			break
		}
	}
	return t
}

func isDir(root *rootfs.Root, p string) bool {
	fi, err := root.Stat(p)
	return err == nil && fi.IsDir()
}

// Plan returns the repository steps, then refresh, upgrade and install, in
// the order cloud-init's modules run them (apt_configure / zypper_add_repo /
// yum_add_repo before package_update_upgrade_install).
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	update := cfg.PackageUpdate != nil && cfg.PackageUpdate.Value
	upgrade := cfg.PackageUpgrade != nil && cfg.PackageUpgrade.Value
	if len(cfg.Repositories) == 0 && len(cfg.Packages) == 0 && !update && !upgrade {
		return nil, nil
	}
	t := inspect(root)

	wantPackages := len(cfg.Packages) > 0 || update || upgrade
	if !wantPackages {
		return repoSteps(cfg.Repositories, t)
	}

	// Where the package part of the configuration came from, for errors
	// that concern all of it.
	var first config.Origin
	switch {
	case len(cfg.Packages) > 0:
		first = cfg.Packages[0].Origin
	case update:
		first = cfg.PackageUpdate.Origin
	default:
		first = cfg.PackageUpgrade.Origin
	}
	mgr := t.mgr
	var deferred error
	if mgr == nil {
		err := fmt.Errorf("%s: packages requested, but %w", first, ErrNoManager)
		if !t.bare {
			return nil, err
		}
		// A bare tree: plan with a placeholder and fail when applied.
		deferred = err
		mgr = &Manager{Family: Family(""), Label: "package manager"}
	}
	steps, err := repoSteps(cfg.Repositories, t)
	if err != nil {
		return nil, err
	}

	// cloud-init's package_update_upgrade_install refreshes when asked to
	// update or upgrade; its Debian install_packages refreshes before every
	// install too, since apt cannot install from empty lists.
	if update || upgrade || (mgr.Family == Apt && len(cfg.Packages) > 0) {
		o, why := first, ""
		switch {
		case update:
			o = cfg.PackageUpdate.Origin
		case upgrade:
			o = cfg.PackageUpgrade.Origin
		default:
			why = "needed before install"
		}
		steps = append(steps, commandStep(mgr, t, opRefresh, nil, o, why, deferred))
	}
	if upgrade {
		steps = append(steps, commandStep(mgr, t, opUpgrade, nil, cfg.PackageUpgrade.Origin, "", deferred))
	}
	if len(cfg.Packages) > 0 {
		steps = append(steps, commandStep(mgr, t, opInstall, cfg.Packages, first, "", deferred))
	}
	return steps, nil
}

// parseOSRelease reads os-release(5): KEY=value, values optionally quoted.
func parseOSRelease(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			q := v[0]
			v = v[1 : len(v)-1]
			if q == '"' {
				r := strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`")
				v = r.Replace(v)
			}
		}
		m[strings.TrimSpace(k)] = v
	}
	return m
}

// writeFile is the Apply of a step that puts one file into the target.
func writeFile(p string, data []byte, mode fs.FileMode) func(context.Context, *modules.Env) error {
	return func(_ context.Context, env *modules.Env) error {
		if env.Root == nil {
			return fmt.Errorf("%s: no target root", p)
		}
		if err := env.Root.MkdirAll(parentDir(p), 0o755, rootfs.RootOwner); err != nil {
			return err
		}
		return env.Root.WriteFile(p, data, mode, rootfs.RootOwner)
	}
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
