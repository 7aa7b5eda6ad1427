package ssh

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// userKeys is every key of one user, validated and deduplicated, in the
// order the config gave them.
type userKeys struct {
	user     string
	origin   config.Origin // the user's first key
	lines    []string
	infos    []KeyInfo
	warnings []string
	prefixed bool
}

// collectKeys groups cfg.SSHKeys by user and validates every line. All
// invalid keys are reported, each with its origin.
func collectKeys(keys []config.AuthorizedKey) ([]*userKeys, error) {
	var order []*userKeys
	byUser := map[string]*userKeys{}
	seen := map[string]map[string]bool{}
	var errs []error
	for _, k := range keys {
		if !config.ValidName(k.User) {
			errs = append(errs, fmt.Errorf("%s: ssh key for invalid user name %q", k.Origin, k.User))
			continue
		}
		info, err := CheckKeyLine(k.Key)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: ssh key for %s: %w", k.Origin, k.User, err))
			continue
		}
		line := composeLine(k.Prefix, k.Key, info.HasOptions)
		if k.Prefix != "" {
			// A broken prefix must not produce a line sshd would skip.
			if _, err := CheckKeyLine(line); err != nil {
				errs = append(errs, fmt.Errorf("%s: ssh key for %s with prefix: %w", k.Origin, k.User, err))
				continue
			}
		}
		uk := byUser[k.User]
		if uk == nil {
			uk = &userKeys{user: k.User, origin: k.Origin}
			byUser[k.User] = uk
			seen[k.User] = map[string]bool{}
			order = append(order, uk)
		}
		if seen[k.User][info.id] {
			continue // the same key twice in the config: written once
		}
		seen[k.User][info.id] = true
		uk.lines = append(uk.lines, line)
		uk.infos = append(uk.infos, info)
		uk.prefixed = uk.prefixed || k.Prefix != ""
		if info.Warning != "" {
			uk.warnings = append(uk.warnings, fmt.Sprintf("%s: warning: %s", k.Origin, info.Warning))
		}
	}
	return order, errors.Join(errs...)
}

// plannedUser is what planning knows about a key owner.
type plannedUser struct {
	home     string // "" when only the target at apply time can tell
	uid, gid int
	inTarget bool
	note     string
}

// lookupPlanned resolves a user for planning: the target's passwd first,
// then the users this config creates (the users module runs before us).
func lookupPlanned(cfg *config.Config, root *rootfs.Root, name string, origin config.Origin) (plannedUser, error) {
	if root != nil {
		uid, gid, home, err := accounts.LookupUser(root, name)
		switch {
		case err == nil && home != "":
			return plannedUser{home: home, uid: uid, gid: gid, inTarget: true}, nil
		case err == nil:
			return plannedUser{}, fmt.Errorf("%s: ssh keys for %q: uid %d has no passwd entry (no home directory) in the target", origin, name, uid)
		case !errors.Is(err, accounts.ErrNotFound):
			return plannedUser{}, fmt.Errorf("%s: ssh keys for %q: %w", origin, name, err)
		}
	}
	for _, u := range cfg.Users {
		if u.Name != name {
			continue
		}
		home := u.HomeDir
		if home == "" {
			home = defaultHome(name)
		}
		return plannedUser{home: home, uid: -1, gid: -1, note: "user created by this config"}, nil
	}
	if root == nil {
		if name == "root" {
			return plannedUser{home: "/root", uid: 0, gid: 0}, nil
		}
		return plannedUser{uid: -1, gid: -1, note: "user resolved in the target when applying"}, nil
	}
	return plannedUser{}, fmt.Errorf("%s: ssh keys for %q: no such user in the target and not created by this config: %w", origin, name, accounts.ErrNotFound)
}

// defaultHome is useradd's default (HOME=/home in /etc/default/useradd).
func defaultHome(name string) string {
	if name == "root" {
		return "/root"
	}
	return "/home/" + name
}

func keysPath(home string) (dir, file string) {
	dir = path.Join("/", home, ".ssh")
	return dir, path.Join(dir, "authorized_keys")
}

// mergeKeys appends to old every line whose key is not in it yet. Existing
// lines, including ones this program cannot parse, are kept byte for byte.
func mergeKeys(old []byte, lines []string, infos []KeyInfo) (data []byte, added int) {
	have := existingKeyIDs(old)
	data = append([]byte(nil), old...)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	for i, line := range lines {
		if have[infos[i].id] {
			continue
		}
		have[infos[i].id] = true
		data = append(data, line...)
		data = append(data, '\n')
		added++
	}
	return data, added
}

func planKeys(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	users, err := collectKeys(cfg.SSHKeys)
	if err != nil {
		return nil, err
	}
	var steps []modules.Step
	var errs []error
	for _, uk := range users {
		pu, err := lookupPlanned(cfg, root, uk.user, uk.origin)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		target := "~" + uk.user + "/.ssh/authorized_keys"
		var details []string
		if pu.home != "" {
			_, target = keysPath(pu.home)
		}
		added := len(uk.lines)
		if root != nil && pu.inTarget {
			n, unchanged, err := keysState(root, pu, uk)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: ssh keys for %q: %w", uk.origin, uk.user, err))
				continue
			}
			if unchanged {
				continue
			}
			added = n
		}
		details = append(details, fmt.Sprintf("%s for %s", countKeys(added), uk.user))
		if dup := len(uk.lines) - added; dup > 0 {
			details = append(details, fmt.Sprintf("%d already present", dup))
		}
		if uk.prefixed {
			details = append(details, "with the disable_root refusal prefix")
		}
		if pu.note != "" {
			details = append(details, pu.note)
		}
		details = append(details, uk.warnings...)
		steps = append(steps, modules.Step{
			Module: "ssh",
			Action: "authorize keys",
			Target: target,
			Detail: strings.Join(details, "; "),
			Origin: uk.origin,
			Apply: func(ctx context.Context, env *modules.Env) error {
				return applyKeys(env, uk)
			},
		})
	}
	return steps, errors.Join(errs...)
}

func countKeys(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}

// keysState reports how many keys a run would add and whether the file and
// directory already look exactly as the run would leave them.
func keysState(root *rootfs.Root, pu plannedUser, uk *userKeys) (added int, unchanged bool, err error) {
	dir, file := keysPath(pu.home)
	old, err := root.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, false, err
	}
	_, added = mergeKeys(old, uk.lines, uk.infos)
	if added > 0 {
		return added, false, nil
	}
	ok := hasAttrs(root, dir, 0o700, pu.uid, pu.gid) && hasAttrs(root, file, 0o600, pu.uid, pu.gid)
	return 0, ok, nil
}

func hasAttrs(root *rootfs.Root, p string, perm fs.FileMode, uid, gid int) bool {
	st, err := root.Lstat(p)
	if err != nil || st.Mode()&fs.ModeSymlink != 0 || st.Mode().Perm() != perm {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid && int(sys.Gid) == gid
}

// applyKeys resolves the user in the target (the users module has run by
// now) and merges the keys into its authorized_keys.
func applyKeys(env *modules.Env, uk *userKeys) error {
	fail := func(err error) error {
		return fmt.Errorf("%s: ssh keys for %q: %w", uk.origin, uk.user, err)
	}
	uid, gid, home, err := accounts.LookupUser(env.Root, uk.user)
	if err != nil {
		return fail(err)
	}
	if home == "" {
		return fail(fmt.Errorf("uid %d has no passwd entry (no home directory)", uid))
	}
	owner := rootfs.Owner{UID: uid, GID: gid}
	dir, file := keysPath(home)
	// Like cloud-init and sshd's StrictModes, never write through a symlinked
	// ~/.ssh or authorized_keys: it could point at a file another user or a
	// service owns.
	for _, p := range []string{dir, file} {
		if st, err := env.Root.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			return fail(fmt.Errorf("%s is a symbolic link; refusing to write through it", p))
		}
	}
	if err := env.Root.MkdirAll(dir, 0o700, owner); err != nil {
		return fail(err)
	}
	if err := env.Root.Chown(dir, owner); err != nil {
		return fail(err)
	}
	if err := env.Root.Chmod(dir, 0o700); err != nil {
		return fail(err)
	}
	old, err := env.Root.ReadFile(file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(err)
	}
	data, _ := mergeKeys(old, uk.lines, uk.infos)
	if err := env.Root.WriteFile(file, data, 0o600, owner); err != nil {
		return fail(err)
	}
	if env.Console != nil {
		for _, w := range uk.warnings {
			fmt.Fprintf(env.Console, "ssh: %s\n", w)
		}
	}
	return nil
}
