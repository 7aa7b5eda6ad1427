package system

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// validValue accepts the characters locale names ("de_DE.UTF-8@euro") and
// XKB names ("pc105+inet", "grp:alt_shift_toggle,ctrl:nocaps") use, and
// nothing a shell sourcing the file would interpret or that would end a line.
func validValue(v string) bool {
	for _, r := range v {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("_.@-+:,", r):
		default:
			return false
		}
	}
	return true
}

// planLocale sets LANG in /etc/locale.conf (systemd, SUSE) and, where the
// target has it, in Debian's /etc/default/locale — the file cloud-init's
// Debian support writes. When one is a symlink to the other, the edit goes
// through the link and the second step finds nothing left to change.
func planLocale(s *config.System, root *rootfs.Root) ([]modules.Step, error) {
	if !s.Locale.IsSet() {
		return nil, nil
	}
	lang, origin := s.Locale.Value, s.Locale.Origin
	if !validValue(lang) {
		return nil, fmt.Errorf("%s: invalid locale %q", origin, lang)
	}
	render := func(old []byte, _ *rootfs.Root) ([]byte, error) {
		return setEnvKeys(old, []string{"LANG"}, map[string]string{"LANG": lang}, false), nil
	}
	var steps []modules.Step
	for _, e := range []edit{
		{action: "set locale", path: "/etc/locale.conf", origin: origin, detail: "LANG=" + lang, render: render},
		{action: "set locale", path: "/etc/default/locale", origin: origin, detail: "LANG=" + lang, render: render, onlyIfExists: true},
	} {
		st, err := e.plan(root)
		if err != nil {
			return nil, err
		}
		steps = append(steps, st...)
	}
	return dedupeSameFile(root, steps), nil
}

// dedupeSameFile drops a later step whose file is the same file as an
// earlier one's after following symlinks in the target.
func dedupeSameFile(root *rootfs.Root, steps []modules.Step) []modules.Step {
	if root == nil || len(steps) < 2 {
		return steps
	}
	seen := map[string]bool{}
	var out []modules.Step
	for _, s := range steps {
		p, err := followInRoot(root, s.Target)
		if err == nil && seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, s)
	}
	return out
}
