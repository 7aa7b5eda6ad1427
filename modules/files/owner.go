package files

import (
	"errors"
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// ownerSpec is an owner as the config names it; empty parts mean root, the
// default of both cloud-init (root:root) and Ignition (uid 0, gid 0).
type ownerSpec struct{ user, group string }

func (o ownerSpec) String() string {
	u, g := o.user, o.group
	if u == "" {
		u = "root"
	}
	if g == "" {
		g = "root"
	}
	return u + ":" + g
}

// parseOwner accepts cloud-init's "user", "user:group" and Ignition's
// separate user and group (names or numbers).
func parseOwner(owner, group string) (ownerSpec, error) {
	spec := ownerSpec{user: owner, group: group}
	if u, g, ok := strings.Cut(owner, ":"); ok {
		if group != "" && group != g {
			return spec, fmt.Errorf("owner %q and group %q disagree", owner, group)
		}
		spec = ownerSpec{user: u, group: g}
	}
	for _, n := range []string{spec.user, spec.group} {
		if n != "" && !config.ValidName(n) && !isNumber(n) {
			return spec, fmt.Errorf("invalid owner name %q", n)
		}
	}
	return spec, nil
}

func isNumber(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// plannedOwner is what planning knows: the numeric owner when the target
// already has both names, or a note saying why it is only known later.
type plannedOwner struct {
	owner rootfs.Owner
	known bool
	note  string
}

// planOwner checks that the names exist in the target or are created by
// this config. lenient (deferred files) also accepts names that only a
// package installed later may create.
func planOwner(cfg *config.Config, root *rootfs.Root, spec ownerSpec, lenient bool) (plannedOwner, error) {
	p := plannedOwner{owner: rootfs.RootOwner, known: true}
	if root == nil {
		if spec.user != "" || spec.group != "" {
			p.known = false
			p.note = "owner resolved in the target when applying"
		}
		return p, nil
	}
	if spec.user != "" {
		uid, _, _, err := accounts.LookupUser(root, spec.user)
		switch {
		case err == nil:
			p.owner.UID = uid
		case !errors.Is(err, accounts.ErrNotFound):
			return p, err
		case configUser(cfg, spec.user):
			p.known, p.note = false, fmt.Sprintf("user %s created by this config", spec.user)
		case lenient:
			p.known, p.note = false, fmt.Sprintf("user %s resolved when applying", spec.user)
		default:
			return p, fmt.Errorf("owner %q: no such user in the target and not created by this config: %w", spec.user, accounts.ErrNotFound)
		}
	}
	if spec.group != "" {
		gid, err := accounts.LookupGroup(root, spec.group)
		switch {
		case err == nil:
			p.owner.GID = gid
		case !errors.Is(err, accounts.ErrNotFound):
			return p, err
		case configGroup(cfg, spec.group):
			p.known = false
			p.note = joinNote(p.note, fmt.Sprintf("group %s created by this config", spec.group))
		case lenient:
			p.known = false
			p.note = joinNote(p.note, fmt.Sprintf("group %s resolved when applying", spec.group))
		default:
			return p, fmt.Errorf("group %q: no such group in the target and not created by this config: %w", spec.group, accounts.ErrNotFound)
		}
	}
	return p, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

func configUser(cfg *config.Config, name string) bool {
	for _, u := range cfg.Users {
		if u.Name == name {
			return true
		}
	}
	return false
}

// configGroup includes the user-private groups useradd creates.
func configGroup(cfg *config.Config, name string) bool {
	for _, g := range cfg.Groups {
		if g.Name == name {
			return true
		}
	}
	for _, u := range cfg.Users {
		if (u.Name == name && !u.NoUserGroup) || u.PrimaryGroup == name {
			return true
		}
	}
	return false
}

// resolveOwner maps the names to ids in the target when applying, after
// the users module has created this config's accounts.
func resolveOwner(root *rootfs.Root, spec ownerSpec) (rootfs.Owner, error) {
	o := rootfs.RootOwner
	if spec.user != "" {
		uid, _, _, err := accounts.LookupUser(root, spec.user)
		if err != nil {
			return o, fmt.Errorf("owner: %w", err)
		}
		o.UID = uid
	}
	if spec.group != "" {
		gid, err := accounts.LookupGroup(root, spec.group)
		if err != nil {
			return o, fmt.Errorf("group: %w", err)
		}
		o.GID = gid
	}
	return o, nil
}
