// Package system applies host-wide settings to the target root: hostname
// (/etc/hostname) and /etc/hosts with cloud-init's semantics (hostname,
// fqdn, prefer_fqdn_over_hostname, preserve_hostname, manage_etc_hosts),
// timezone (/etc/localtime into the target's own zoneinfo), locale
// (/etc/locale.conf) and keyboard (/etc/vconsole.conf and the X11 keyboard
// file localectl writes). Files it edits keep every line it does not own.
package system

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Plan returns the steps for cfg.System. Planning reads the target (when
// root is not nil) to validate the timezone and to leave out files that
// already say what the config asks; it never writes.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	s := &cfg.System
	var steps []modules.Step
	var errs []error
	add := func(st []modules.Step, err error) {
		steps = append(steps, st...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	add(planHostname(s, root))
	add(planHosts(s, root))
	add(planTimezone(s, root))
	add(planLocale(s, root))
	add(planKeyboard(s, root))
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return steps, nil
}

// edit is a rewrite of one text file in the target, computed from its
// current content so that lines the config does not own are kept.
type edit struct {
	action string
	path   string
	origin config.Origin
	detail string
	// onlyIfExists: the distribution uses the file only when it ships it
	// (Debian's /etc/timezone, /etc/default/locale, /etc/default/keyboard).
	onlyIfExists bool
	render       func(old []byte, root *rootfs.Root) ([]byte, error)
}

// current reads the file the edit applies to. A symlink in the target is
// followed inside the root (Debian's /etc/locale.conf may point to
// default/locale): editing the link's target is what the admin expects.
func (e edit) current(root *rootfs.Root) (p string, old []byte, st fs.FileInfo, err error) {
	p, err = followInRoot(root, e.path)
	if err != nil {
		return "", nil, nil, err
	}
	st, err = root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil, nil, nil
	}
	if err != nil {
		return "", nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return "", nil, nil, fmt.Errorf("%s is not a regular file", p)
	}
	old, err = root.ReadFile(p)
	return p, old, st, err
}

// followInRoot returns the in-root path p leads to, following symlinks
// with the target's (chroot) semantics.
func followInRoot(root *rootfs.Root, p string) (string, error) {
	host, err := root.ResolveFollow(p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root.Dir, host)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s: %w", p, rootfs.ErrEscape)
	}
	return rootfs.Join(rel), nil
}

// plan returns the step, or none when the target already has the content.
func (e edit) plan(root *rootfs.Root) ([]modules.Step, error) {
	step := modules.Step{
		Module: "system",
		Action: e.action,
		Target: e.path,
		Detail: e.detail,
		Origin: e.origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := e.apply(env.Root); err != nil {
				return fmt.Errorf("%s: %s %s: %w", e.origin, e.action, e.path, err)
			}
			return nil
		},
	}
	if root == nil {
		if e.onlyIfExists {
			step.Detail = joinDetail(step.Detail, "only if the target has this file")
		}
		return []modules.Step{step}, nil
	}
	_, old, st, err := e.current(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", e.origin, e.action, e.path, err)
	}
	if st == nil && e.onlyIfExists {
		return nil, nil
	}
	data, err := e.render(old, root)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", e.origin, e.action, e.path, err)
	}
	if st != nil && bytes.Equal(data, old) {
		return nil, nil
	}
	return []modules.Step{step}, nil
}

func (e edit) apply(root *rootfs.Root) error {
	p, old, st, err := e.current(root)
	if err != nil {
		return err
	}
	if st == nil && e.onlyIfExists {
		return nil
	}
	data, err := e.render(old, root)
	if err != nil {
		return err
	}
	mode, owner := fs.FileMode(0o644), rootfs.RootOwner
	if st != nil {
		if bytes.Equal(data, old) {
			return nil
		}
		mode = st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			owner = rootfs.Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
		}
	}
	return root.WriteFile(p, data, mode, owner)
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// lines splits text into lines without their newlines; a missing final
// newline is added back by joinLines.
func lines(data []byte) []string {
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func joinLines(ls []string) []byte {
	if len(ls) == 0 {
		return nil
	}
	return []byte(strings.Join(ls, "\n") + "\n")
}

// setEnvKeys rewrites an environment-style file (KEY=value lines, as
// locale.conf, vconsole.conf and /etc/default/* are): the first assignment
// of each key is replaced in place, later duplicates are dropped (they
// would win when the file is sourced), keys with an empty value are
// removed (written as KEY="" when quoting, as Debian's files have them),
// and missing keys are appended in the order given. Comments and
// other keys stay byte for byte.
func setEnvKeys(data []byte, keys []string, values map[string]string, quote bool) []byte {
	done := map[string]bool{}
	var out []string
	for _, line := range lines(data) {
		key, ok := assignedKey(line)
		if !ok {
			out = append(out, line)
			continue
		}
		v, managed := values[key]
		switch {
		case !managed:
			out = append(out, line)
		case done[key] || (v == "" && !quote):
			// dropped
		default:
			out = append(out, formatAssign(key, v, quote))
		}
		if managed {
			done[key] = true
		}
	}
	for _, k := range keys {
		if !done[k] && (values[k] != "" || quote) {
			out = append(out, formatAssign(k, values[k], quote))
		}
	}
	return joinLines(out)
}

func formatAssign(k, v string, quote bool) string {
	if quote {
		return k + `="` + v + `"`
	}
	return k + "=" + v
}

// assignedKey returns KEY for a "KEY=..." or "export KEY=..." line.
func assignedKey(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' {
		return "", false
	}
	t = strings.TrimPrefix(t, "export ")
	k, _, ok := strings.Cut(t, "=")
	if !ok || k == "" || strings.ContainsAny(k, " \t") {
		return "", false
	}
	return k, true
}

// envValue reads KEY from an environment-style file (os-release).
func envValue(data []byte, key string) string {
	for _, line := range lines(data) {
		k, ok := assignedKey(line)
		if !ok || k != key {
			continue
		}
		_, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		return strings.Trim(v, `"'`)
	}
	return ""
}
