// Package units applies systemd units in the target: it writes unit files
// and drop-ins under /etc/systemd/system, masks and unmasks, and enables
// and disables units by creating or removing exactly the symlinks
// `systemctl --root DIR enable|disable NAME` would, reading the [Install]
// sections from the target's own unit search path. It runs no systemctl:
// the initrd has none for the target, and Ignition's way (a preset file
// applied at first boot) silently ignores units that do not exist, where
// this package reports them.
package units

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// unitMode is what systemctl edit and Ignition give unit files and drop-ins.
const unitMode fs.FileMode = 0o644

const module = "units"

// Plan returns the steps for cfg.Units in this order: unit files and
// drop-ins, masks and unmasks, disables, enables. Enabling comes last so it
// sees every unit this run writes (Also= may name one). With a target
// root, steps that would change nothing are left out.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	v := newView(root)
	if err := v.addConfigFiles(cfg, root); err != nil {
		return nil, err
	}
	var writes, masks, disables, enables []modules.Step
	var errs []error
	for _, u := range cfg.Units {
		if _, ok := parseUnitName(u.Name); !ok {
			errs = append(errs, fmt.Errorf("%s: unit %q: not a valid unit name", u.Origin, u.Name))
			continue
		}
		unitPath := configDir + "/" + u.Name
		if u.Contents != nil && !u.Mask {
			s, err := planWrite(v, u, unitPath, []byte(*u.Contents), "write unit")
			if err != nil {
				errs = append(errs, err)
			}
			writes = append(writes, s...)
			v.put(unitPath, entry{exists: true, data: []byte(*u.Contents)})
		}
		for _, d := range u.Dropins {
			if d.Name == "" || strings.Contains(d.Name, "/") || !strings.HasSuffix(d.Name, ".conf") {
				errs = append(errs, fmt.Errorf("%s: unit %s: invalid drop-in name %q", u.Origin, u.Name, d.Name))
				continue
			}
			p := unitPath + ".d/" + d.Name
			s, err := planWrite(v, u, p, []byte(d.Contents), "write drop-in")
			if err != nil {
				errs = append(errs, err)
			}
			writes = append(writes, s...)
			v.put(p, entry{exists: true, data: []byte(d.Contents)})
		}
		switch {
		case u.Mask:
			s, err := planMask(v, u, unitPath)
			if err != nil {
				errs = append(errs, err)
			}
			masks = append(masks, s...)
			v.put(unitPath, entry{exists: true, symlink: true, target: "/dev/null"})
		case u.Unmask:
			e, err := v.lstat(unitPath)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: unit %s: %w", u.Origin, u.Name, err))
				break
			}
			if e.symlink && e.target == "/dev/null" {
				masks = append(masks, modules.Step{
					Module: module, Action: "unmask", Target: u.Name, Detail: "remove " + unitPath + " -> /dev/null", Origin: u.Origin,
					Apply: func(ctx context.Context, env *modules.Env) error {
						return wrap(u, "unmask", unmask(env.Root, unitPath))
					},
				})
				v.put(unitPath, entry{})
			}
		}
	}
	for _, u := range cfg.Units {
		if u.Enabled == nil || u.Mask {
			// Masking wins: a masked unit cannot be enabled (systemctl
			// refuses), and Ignition's preset would do nothing to it.
			continue
		}
		if *u.Enabled {
			s, err := planEnable(v, u)
			if err != nil {
				errs = append(errs, err)
			}
			enables = append(enables, s...)
		} else {
			s, err := planDisable(v, u)
			if err != nil {
				errs = append(errs, err)
			}
			disables = append(disables, s...)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	steps := append(writes, masks...)
	steps = append(steps, disables...)
	return append(steps, enables...), nil
}

func wrap(u config.Unit, what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: unit %s: %s: %w", u.Origin, u.Name, what, err)
}

// addConfigFiles lays what the files module writes earlier in the run over
// the target, so a unit written by storage.files or write_files is found.
func (v *view) addConfigFiles(cfg *config.Config, root *rootfs.Root) error {
	for _, f := range cfg.Files {
		if config.CheckPath(f.Path) != nil {
			continue
		}
		switch {
		case f.Append || (f.Contents == nil && f.Source != ""):
			v.put(f.Path, entry{exists: true, unknown: true})
		case f.Contents != nil:
			v.put(f.Path, entry{exists: true, data: f.Contents})
		case f.Overwrite != nil && !*f.Overwrite:
			// kept as it is, or created empty
			if e, err := v.lstat(f.Path); err == nil && !e.exists {
				v.put(f.Path, entry{exists: true, data: []byte{}})
			}
		default:
			v.put(f.Path, entry{exists: true, data: []byte{}})
		}
	}
	for _, l := range cfg.Links {
		if config.CheckPath(l.Path) != nil {
			continue
		}
		if l.Hard {
			v.put(l.Path, entry{exists: true, unknown: true})
		} else {
			v.put(l.Path, entry{exists: true, symlink: true, target: l.Target})
		}
	}
	return nil
}

func planWrite(v *view, u config.Unit, p string, data []byte, action string) ([]modules.Step, error) {
	if v.root != nil {
		e, err := v.lstat(p)
		if err != nil {
			return nil, wrap(u, action, err)
		}
		if e.exists && !e.symlink && !e.unknown && bytes.Equal(e.data, data) {
			if st, err := v.root.Lstat(p); err == nil && st.Mode().Perm() == unitMode {
				return nil, nil
			}
		}
	}
	return []modules.Step{{
		Module: module, Action: action, Target: p,
		Detail: fmt.Sprintf("%d bytes, mode 0644", len(data)), Origin: u.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			return wrap(u, action, env.Root.WriteFile(p, data, unitMode, rootfs.RootOwner))
		},
	}}, nil
}

// planMask symlinks the unit to /dev/null in /etc/systemd/system. Whatever
// is there is replaced, as Ignition does (systemctl mask refuses a regular
// file there; Ignition's configs routinely carry contents and mask: true).
func planMask(v *view, u config.Unit, p string) ([]modules.Step, error) {
	e, err := v.lstat(p)
	if err != nil {
		return nil, wrap(u, "mask", err)
	}
	if e.symlink && e.target == "/dev/null" {
		return nil, nil
	}
	detail := p + " -> /dev/null"
	if e.exists && !e.symlink {
		detail += ", replacing the unit file there"
	}
	return []modules.Step{{
		Module: module, Action: "mask", Target: u.Name, Detail: detail, Origin: u.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			return wrap(u, "mask", env.Root.Symlink("/dev/null", p))
		},
	}}, nil
}

func unmask(root *rootfs.Root, p string) error {
	e, err := newView(root).lstat(p)
	if err != nil {
		return err
	}
	if e.symlink && e.target == "/dev/null" {
		return root.Remove(p)
	}
	return nil
}

func planEnable(v *view, u config.Unit) ([]modules.Step, error) {
	links, err := v.enableLinks(u.Name)
	switch {
	case errors.Is(err, errUnknown) || (!v.hasSystemd() && errors.Is(err, errNotFound)):
		// Without the target (or before remote contents are fetched) the
		// links can only be decided when applying. A tree without any
		// systemd unit directory is not a real target (--dry-run without
		// --root plans against a bare skeleton): a missing unit there
		// says nothing, and applying still refuses one.
		return []modules.Step{enableStep(u, "symlinks decided when applying")}, nil
	case errors.Is(err, errNotFound):
		return nil, wrap(u, "enable", fmt.Errorf("%w (Ignition would silently ignore this; provision refuses)", err))
	case err != nil:
		return nil, wrap(u, "enable", err)
	}
	var todo []string
	for _, l := range links {
		same, err := v.linkInPlace(l)
		if err != nil {
			return nil, wrap(u, "enable", err)
		}
		if !same {
			todo = append(todo, l.path+" -> "+l.target)
		}
	}
	if len(todo) == 0 {
		return nil, nil
	}
	return []modules.Step{enableStep(u, strings.Join(todo, ", "))}, nil
}

// hasSystemd reports whether the target has a vendor unit directory, i.e.
// whether "unit not found" in it means anything.
func (v *view) hasSystemd() bool {
	if v.root == nil {
		return false
	}
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if st, err := v.root.Stat(d); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

func enableStep(u config.Unit, detail string) modules.Step {
	return modules.Step{
		Module: module, Action: "enable", Target: u.Name, Detail: detail, Origin: u.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			return wrap(u, "enable", Enable(env.Root, u.Name))
		},
	}
}

// Enable creates the symlinks `systemctl --root enable name` would create
// in root, reading the unit files as they are now.
func Enable(root *rootfs.Root, name string) error {
	v := newView(root)
	links, err := v.enableLinks(name)
	if err != nil {
		return err
	}
	for _, l := range links {
		same, err := v.linkInPlace(l)
		if err != nil {
			return err
		}
		if same {
			continue
		}
		if err := root.Symlink(l.target, l.path); err != nil {
			return err
		}
	}
	return nil
}

// linkInPlace reports whether l already exists as systemctl would accept
// it, and errors where systemctl would refuse to replace what is there.
func (v *view) linkInPlace(l link) (bool, error) {
	e, err := v.lstat(l.path)
	if err != nil || !e.exists {
		return false, err
	}
	if !e.symlink {
		return false, fmt.Errorf("%s already exists and is not a symlink", l.path)
	}
	if e.target == l.target || v.sameFile(l.path, l.target) {
		return true, nil
	}
	if !l.force {
		return false, fmt.Errorf("%s already exists and links to %s, not %s", l.path, e.target, l.target)
	}
	return false, nil
}

// sameFile reports whether the symlink at linkPath resolves to the same
// file as target, inside the target root.
func (v *view) sameFile(linkPath, target string) bool {
	if v.root == nil {
		return false
	}
	a, okA := v.chase(linkPath)
	b, okB := v.chase(target)
	return okA && okB && path.Clean(a) == path.Clean(b)
}

func planDisable(v *view, u config.Unit) ([]modules.Step, error) {
	if v.root == nil {
		return []modules.Step{disableStep(u, "symlinks decided when applying")}, nil
	}
	rm, err := v.disableRemovals(u.Name)
	if errors.Is(err, errUnknown) {
		return []modules.Step{disableStep(u, "symlinks decided when applying")}, nil
	}
	if err != nil {
		return nil, wrap(u, "disable", err)
	}
	if len(rm) == 0 {
		return nil, nil
	}
	return []modules.Step{disableStep(u, "remove "+strings.Join(rm, ", "))}, nil
}

func disableStep(u config.Unit, detail string) modules.Step {
	return modules.Step{
		Module: module, Action: "disable", Target: u.Name, Detail: detail, Origin: u.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			return wrap(u, "disable", Disable(env.Root, u.Name))
		},
	}
}

// Disable removes the symlinks `systemctl --root disable name` would remove.
func Disable(root *rootfs.Root, name string) error {
	rm, err := newView(root).disableRemovals(name)
	if err != nil {
		return err
	}
	emptied := map[string]bool{}
	for _, p := range rm {
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if d := path.Dir(p); d != configDir {
			emptied[d] = true
		}
	}
	// systemctl removes a .wants/ (or other) directory it emptied, and
	// leaves directories that were empty before alone.
	for _, d := range sortedKeys(emptied) {
		host, err := root.Resolve(d)
		if err != nil {
			return err
		}
		if ents, err := os.ReadDir(host); err == nil && len(ents) == 0 {
			if err := root.Remove(d); err != nil {
				return err
			}
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
