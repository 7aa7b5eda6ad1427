package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Where sshd reads its configuration. openSUSE ships the defaults in
// /usr/etc and reads /etc/ssh/sshd_config only when an admin created it;
// Debian and openSUSE both include sshd_config.d/*.conf from the main file.
const (
	SSHDConfig       = "/etc/ssh/sshd_config"
	VendorSSHDConfig = "/usr/etc/ssh/sshd_config"
	DropInDir        = "/etc/ssh/sshd_config.d"
	// DropIn has the number cloud-init uses for its 50-cloud-init.conf, so
	// the two order the same way against distribution drop-ins (Ubuntu's
	// 60-cloudimg-settings.conf sorts after it and loses: sshd keeps the
	// first value it reads).
	DropIn = DropInDir + "/50-provision.conf"
)

const dropInHeader = "# Written by provision (ssh_pwauth). sshd uses the first value it reads,\n" +
	"# so a drop-in sorting before this one wins.\n"

// sshdChange is the file write that sets PasswordAuthentication.
type sshdChange struct {
	path      string
	data      []byte
	mode      fs.FileMode
	owner     rootfs.Owner
	how       string
	notes     []string
	unchanged bool
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// planSSHD decides, from the target's sshd configuration, where the setting
// goes: a drop-in when the main config includes sshd_config.d (as cloud-init
// decides in update_ssh_config), otherwise an edit of sshd_config itself.
func planSSHD(root *rootfs.Root, pwauth bool) (sshdChange, error) {
	value := yesNo(pwauth)
	main, err := readOptional(root, SSHDConfig)
	if err != nil {
		return sshdChange{}, err
	}
	mainPath := SSHDConfig
	if main == nil {
		if main, err = readOptional(root, VendorSSHDConfig); err != nil {
			return sshdChange{}, err
		}
		mainPath = VendorSSHDConfig
	}
	switch {
	case main != nil && includesDropIns(main):
		return planDropIn(root, value, mainPath, main)
	case main != nil:
		return planEdit(root, value, mainPath, main)
	default:
		ch, err := planDropIn(root, value, "", nil)
		if err == nil && !root.Exists(DropInDir) {
			ch.notes = append(ch.notes, "no sshd configuration found in the target")
		}
		return ch, err
	}
}

func readOptional(root *rootfs.Root, p string) ([]byte, error) {
	data, err := root.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return data, nil
}

func planDropIn(root *rootfs.Root, value, mainPath string, main []byte) (sshdChange, error) {
	ch := sshdChange{
		path:  DropIn,
		data:  []byte(dropInHeader + "PasswordAuthentication " + value + "\n"),
		mode:  0o600, // cloud-init creates its drop-in root-only too
		owner: rootfs.RootOwner,
		how:   "drop-in",
	}
	if old, err := readOptional(root, DropIn); err != nil {
		return ch, err
	} else if bytes.Equal(old, ch.data) {
		if st, err := root.Lstat(DropIn); err == nil && st.Mode().IsRegular() && st.Mode().Perm() == 0o600 {
			ch.unchanged = true
		}
	}
	// sshd keeps the first value: say so when something read earlier sets a
	// different one, rather than pretend the drop-in takes effect.
	if main != nil {
		for _, o := range topLevelSettings(main, true) {
			if o.value != value {
				ch.notes = append(ch.notes, fmt.Sprintf("warning: %s:%d sets PasswordAuthentication %s before the include and wins", mainPath, o.line, o.value))
			}
		}
	}
	earlier, err := earlierDropIns(root)
	if err != nil {
		return ch, err
	}
	for _, name := range earlier {
		data, err := readOptional(root, path.Join(DropInDir, name))
		if err != nil {
			return ch, err
		}
		for _, o := range topLevelSettings(data, false) {
			if o.value != value {
				ch.notes = append(ch.notes, fmt.Sprintf("warning: %s/%s:%d sets PasswordAuthentication %s and wins", DropInDir, name, o.line, o.value))
			}
		}
	}
	return ch, nil
}

// earlierDropIns lists the *.conf drop-ins sshd reads before ours.
func earlierDropIns(root *rootfs.Root) ([]string, error) {
	entries, err := root.ReadDir(DropInDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		// sshd expands the glob, which sorts like strcmp.
		if strings.HasSuffix(n, ".conf") && n < path.Base(DropIn) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

func planEdit(root *rootfs.Root, value, mainPath string, main []byte) (sshdChange, error) {
	out, changed := editSSHDConfig(main, value)
	st, err := root.Stat(mainPath)
	if err != nil {
		return sshdChange{}, err
	}
	owner := rootfs.RootOwner
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		owner = rootfs.Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
	}
	ch := sshdChange{
		path:      SSHDConfig,
		data:      out,
		mode:      st.Mode().Perm(),
		owner:     owner,
		how:       "edit (no Include of " + DropInDir + ")",
		unchanged: !changed && mainPath == SSHDConfig,
	}
	if mainPath != SSHDConfig {
		// sshd reads /usr/etc only while /etc has no sshd_config: the edited
		// copy must be complete, as openSUSE's documentation asks of admins.
		ch.how = "copy of " + mainPath + " with the setting"
	}
	return ch, nil
}

// option is one top-level occurrence of PasswordAuthentication.
type option struct {
	line  int
	value string
}

// splitKeyword splits an sshd_config line into keyword and arguments. sshd
// accepts "Key value", "Key=value" and "Key = value".
func splitKeyword(line string) (key, args string) {
	line = strings.TrimSpace(line)
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	key, args = line[:i], strings.TrimLeft(line[i:], " \t")
	args = strings.TrimPrefix(args, "=")
	return key, strings.TrimSpace(args)
}

func firstArg(args string) string {
	f := strings.Fields(args)
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], `"`)
}

// topLevelSettings returns the PasswordAuthentication lines before the first
// Match block (inside one they only apply to matching connections). With
// beforeInclude it stops at the Include of our drop-in directory.
func topLevelSettings(data []byte, beforeInclude bool) []option {
	var out []option
	for i, line := range strings.Split(string(data), "\n") {
		key, args := splitKeyword(line)
		switch strings.ToLower(key) {
		case "match":
			return out
		case "include":
			if beforeInclude && includeArgsMatch(args) {
				return out
			}
		case "passwordauthentication":
			out = append(out, option{i + 1, strings.ToLower(firstArg(args))})
		}
	}
	return out
}

func includeArgsMatch(args string) bool {
	for _, a := range strings.Fields(args) {
		a = strings.Trim(a, `"`)
		// Relative Include paths are taken relative to /etc/ssh.
		if a == DropInDir+"/*.conf" || a == "sshd_config.d/*.conf" {
			return true
		}
	}
	return false
}

// includesDropIns reports whether sshd_config includes sshd_config.d/*.conf
// outside any Match block.
func includesDropIns(data []byte) bool {
	for _, line := range strings.Split(string(data), "\n") {
		key, args := splitKeyword(line)
		switch strings.ToLower(key) {
		case "match":
			return false
		case "include":
			if includeArgsMatch(args) {
				return true
			}
		}
	}
	return false
}

// editSSHDConfig sets PasswordAuthentication in the global section, like
// cloud-init's update_ssh_config_lines, but keeps every other line byte for
// byte and adds a missing setting before the first Match block rather than
// at the end of the file, where it would only apply to that Match.
func editSSHDConfig(data []byte, value string) ([]byte, bool) {
	lines := strings.Split(string(data), "\n")
	want := "PasswordAuthentication " + value
	changed, found := false, false
	matchAt := -1
	for i, line := range lines {
		key, args := splitKeyword(line)
		k := strings.ToLower(key)
		if k == "match" {
			matchAt = i
			break
		}
		if k == "passwordauthentication" {
			found = true
			if firstArg(args) != value {
				lines[i] = want
				changed = true
			}
		}
	}
	if !found {
		changed = true
		if matchAt >= 0 {
			lines = append(lines[:matchAt], append([]string{want}, lines[matchAt:]...)...)
		} else {
			if n := len(lines); n > 0 && lines[n-1] == "" {
				lines = lines[:n-1]
			}
			lines = append(lines, want, "")
		}
	}
	return []byte(strings.Join(lines, "\n")), changed
}

func planPwauth(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	s := cfg.SSHPwauth
	if s == nil {
		return nil, nil
	}
	value := yesNo(s.Value)
	step := modules.Step{
		Module: "ssh",
		Action: "set PasswordAuthentication " + value,
		Target: DropIn,
		Origin: s.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			ch, err := planSSHD(env.Root, s.Value)
			if err != nil {
				return fmt.Errorf("%s: ssh_pwauth: %w", s.Origin, err)
			}
			if ch.unchanged {
				return nil
			}
			if err := env.Root.WriteFile(ch.path, ch.data, ch.mode, ch.owner); err != nil {
				return fmt.Errorf("%s: ssh_pwauth: %w", s.Origin, err)
			}
			if env.Console != nil {
				for _, n := range ch.notes {
					fmt.Fprintf(env.Console, "ssh: %s: %s\n", s.Origin, n)
				}
			}
			return nil
		},
	}
	if root == nil {
		step.Detail = "drop-in or sshd_config edit, decided by the target's sshd configuration"
		return []modules.Step{step}, nil
	}
	ch, err := planSSHD(root, s.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: ssh_pwauth: %w", s.Origin, err)
	}
	if ch.unchanged {
		return nil, nil
	}
	step.Target = ch.path
	step.Detail = strings.Join(append([]string{ch.how}, ch.notes...), "; ")
	return []modules.Step{step}, nil
}
