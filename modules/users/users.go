// Package users applies the configuration's groups, users, passwords
// (chpasswd), password locks, sudo rules and home directories to the target
// root, editing the account databases natively through modules/accounts so
// the result is what useradd, groupadd, usermod, chpasswd and passwd -l
// would have written — without shadow-utils in the initrd.
//
// Semantics follow cloud-init: groups first (created when missing, existing
// users added as members), then users (created with useradd's rules; an
// existing user is only added to the groups it lists), then passwords, locks,
// chpasswd, sudo rules and homes. SSH keys belong to modules/ssh.
package users

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// SudoersFile collects every user's sudo rules, like cloud-init's
// /etc/sudoers.d/90-cloud-init-users.
const SudoersFile = "/etc/sudoers.d/90-provision-users"

// sudoersMain is the file that must include /etc/sudoers.d.
const sudoersMain = "/etc/sudoers"

// Plan returns the steps that bring the target's accounts to cfg, omitting
// what is already so.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	return plan(cfg, root, time.Now)
}

// op changes the databases; env is nil while planning. It reports whether it
// changed something and a detail for the plan line.
type op func(db *accounts.DB, env *modules.Env) (changed bool, detail string, err error)

type planner struct {
	cfg   *config.Config
	root  *rootfs.Root
	now   func() time.Time
	sim   *accounts.DB // the databases as they will be after the steps so far
	steps []modules.Step
	// homes of users this plan creates, made in the homes phase.
	homes []config.User
}

func plan(cfg *config.Config, root *rootfs.Root, now func() time.Time) ([]modules.Step, error) {
	if len(cfg.Groups) == 0 && len(cfg.Users) == 0 && len(cfg.Passwords) == 0 {
		return nil, nil
	}
	db, err := accounts.Open(root)
	if err != nil {
		return nil, err
	}
	db.Now = now
	p := &planner{cfg: cfg, root: root, now: now, sim: db}
	for _, phase := range []func() error{p.groups, p.users, p.passwords, p.locks, p.chpasswd, p.sudo, p.homeDirs, p.aging} {
		if err := phase(); err != nil {
			return nil, err
		}
	}
	return p.steps, nil
}

func wrap(o config.Origin, err error) error {
	return fmt.Errorf("%s: %w", o, err)
}

// add simulates o on the plan's databases and, when it changes something,
// appends a step that redoes it on the target under the lock.
func (p *planner) add(action, target string, origin config.Origin, o op) error {
	changed, detail, err := o(p.sim, nil)
	if err != nil {
		return wrap(origin, err)
	}
	if !changed {
		return nil
	}
	now := p.now
	p.steps = append(p.steps, modules.Step{
		Module: "users", Action: action, Target: target, Detail: detail, Origin: origin,
		Batch: accountsBatch, Writes: accounts.Paths(),
		Apply: func(ctx context.Context, env *modules.Env) error {
			// A run of thousands of users stops at the next one once the
			// context is done (SIGTERM); the batch is then released
			// unwritten, so no account file is half changed.
			if err := ctx.Err(); err != nil {
				return wrap(origin, err)
			}
			db, err := openAccounts(env, now)
			if err == nil {
				_, _, err = o(db, env)
			}
			if err != nil {
				return wrap(origin, err)
			}
			return nil
		},
	})
	return nil
}

// accountsBatch is the batch of the steps that change the account
// databases: locked and read by the first, changed in memory by each, and
// written once (one atomic replace per file) when the run of them ends.
const accountsBatch = "account databases"

type accountsState struct {
	root   *rootfs.Root
	db     *accounts.DB
	unlock func() error
}

func (s *accountsState) Flush() error {
	err := s.db.Save(s.root)
	if uerr := s.unlock(); err == nil {
		err = uerr
	}
	return err
}

func (s *accountsState) Release() { _ = s.unlock() }

// openAccounts returns the batch's databases, taking the lock and reading
// them when the batch opens.
func openAccounts(env *modules.Env, now func() time.Time) (*accounts.DB, error) {
	if s, ok := env.Batch(accountsBatch).(*accountsState); ok {
		return s.db, nil
	}
	unlock, err := accounts.Lock(env.Root)
	if err != nil {
		return nil, err
	}
	db, err := accounts.Open(env.Root)
	if err != nil {
		unlock()
		return nil, err
	}
	db.Now = now
	env.OpenBatch(accountsBatch, &accountsState{root: env.Root, db: db, unlock: unlock})
	return db, nil
}

// addFS appends a step that writes outside the account databases.
func (p *planner) addFS(action, target, detail string, origin config.Origin, apply func(env *modules.Env) error, writes ...string) {
	p.steps = append(p.steps, modules.Step{
		Module: "users", Action: action, Target: target, Detail: detail, Origin: origin, Writes: writes,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := ctx.Err(); err != nil {
				return wrap(origin, err)
			}
			if err := apply(env); err != nil {
				return wrap(origin, err)
			}
			return nil
		},
	})
}

func uniqueUsers(us []config.User) []config.User {
	seen := map[string]bool{}
	var out []config.User
	for _, u := range us {
		if !seen[u.Name] {
			seen[u.Name] = true
			out = append(out, u)
		}
	}
	return out
}

func (p *planner) definedUser(name string) bool {
	for _, u := range p.cfg.Users {
		if u.Name == name {
			return true
		}
	}
	return false
}

// groups creates cfg.Groups (groupadd) and adds their members that exist;
// members created by this plan are added when they are.
func (p *planner) groups() error {
	seen := map[string]bool{}
	for _, g := range p.cfg.Groups {
		if seen[g.Name] {
			continue
		}
		seen[g.Name] = true
		g := g
		err := p.add("create group", g.Name, g.Origin, func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
			if db.Group.Lookup(g.Name) != nil {
				return false, "", nil
			}
			gid, err := db.AddGroup(accounts.GroupSpec{Name: g.Name, GID: g.GID, System: g.System, Password: g.PasswordHash})
			if err != nil {
				return false, "", err
			}
			return true, "gid " + strconv.Itoa(gid), nil
		})
		if err != nil {
			return err
		}
		for _, m := range g.Members {
			if p.sim.Passwd.Lookup(m) == nil {
				if p.definedUser(m) {
					continue // added by the user's create step
				}
				// cloud-init's create_group warns and skips a member that
				// does not exist; so do we, in the plan and on the console
				// (a dry run without --root knows no default user, so
				// failing here would reject configs that work).
				p.skipMember(g, m)
				continue
			}
			if err := p.add("add member", g.Name, g.Origin, addMemberOp(g.Name, m)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *planner) skipMember(g config.Group, member string) {
	detail := fmt.Sprintf("user %s does not exist; skipped, as cloud-init does", member)
	p.addFS("skip member", g.Name, detail, g.Origin, func(env *modules.Env) error {
		if env.Console != nil {
			fmt.Fprintf(env.Console, "[WARN] users: %s: group %s: %s\n", g.Origin, g.Name, detail)
		}
		return nil
	})
}

func addMemberOp(group, user string) op {
	return func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
		changed, err := db.AddMember(group, user)
		return changed, "user " + user, err
	}
}

// ensureGroup creates a group a user refers to when it is missing, as
// cloud-init does (plain groupadd).
func (p *planner) ensureGroup(name string, origin config.Origin, forUser string) error {
	if p.sim.Group.Lookup(name) != nil {
		return nil
	}
	if _, err := strconv.Atoi(name); err == nil {
		return wrap(origin, fmt.Errorf("user %q: group id %s: %w", forUser, name, accounts.ErrNotFound))
	}
	return p.add("create group", name, origin, func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
		if db.Group.Lookup(name) != nil {
			return false, "", nil
		}
		gid, err := db.AddGroup(accounts.GroupSpec{Name: name})
		if err != nil {
			return false, "", err
		}
		return true, fmt.Sprintf("gid %d, for user %s", gid, forUser), nil
	})
}

func (p *planner) users() error {
	for _, u := range uniqueUsers(p.cfg.Users) {
		u := u
		groups := append([]string(nil), u.Groups...)
		if u.PrimaryGroup != "" {
			groups = append(groups, u.PrimaryGroup)
		}
		for _, g := range groups {
			if err := p.ensureGroup(g, u.Origin, u.Name); err != nil {
				return err
			}
		}
		if p.sim.Passwd.Lookup(u.Name) != nil {
			// An existing user: like usermod -a -G, only add memberships.
			for _, g := range u.Groups {
				if err := p.add("add member", g, u.Origin, addMemberOp(g, u.Name)); err != nil {
					return err
				}
			}
			continue
		}
		spec, err := userSpec(u)
		if err != nil {
			return wrap(u.Origin, err)
		}
		// Groups of cfg.Groups listing this user as a member.
		var memberOf []string
		for _, g := range p.cfg.Groups {
			for _, m := range g.Members {
				if m == u.Name {
					memberOf = append(memberOf, g.Name)
				}
			}
		}
		create := func(db *accounts.DB, env *modules.Env) (bool, string, error) {
			if db.Passwd.Lookup(u.Name) != nil {
				return false, "", nil
			}
			nu, err := db.AddUser(spec)
			if err != nil {
				return false, "", err
			}
			for _, g := range memberOf {
				if _, err := db.AddMember(g, u.Name); err != nil {
					return false, "", err
				}
			}
			if env != nil && !u.System {
				if err := db.CreateMailSpool(env.Root, u.Name, nu.UID, nu.GID); err != nil {
					return false, "", err
				}
			}
			d := fmt.Sprintf("uid %d, gid %d", nu.UID, nu.GID)
			if all := append(append([]string(nil), u.Groups...), memberOf...); len(all) > 0 {
				d += ", groups " + strings.Join(all, ",")
			}
			d += ", home " + nu.Home
			if u.System {
				d += ", system"
			}
			return true, d, nil
		}
		if err := p.add("create user", u.Name, u.Origin, create); err != nil {
			return err
		}
		if !u.NoCreateHome && !u.System {
			p.homes = append(p.homes, u)
		}
	}
	return nil
}

// userSpec is the useradd request cloud-init would make for u.
func userSpec(u config.User) (accounts.UserSpec, error) {
	s := accounts.UserSpec{
		Name: u.Name, UID: u.UID, Group: u.PrimaryGroup, Groups: u.Groups,
		Comment: u.Gecos, Home: u.HomeDir, Shell: u.Shell, System: u.System,
		NoUserGroup: u.NoUserGroup, Inactive: u.Inactive, Password: u.InitialPassword,
	}
	if u.ExpireDate != "" {
		d, err := accounts.ParseDay(u.ExpireDate)
		if err != nil {
			return s, fmt.Errorf("user %q: expiredate: %w", u.Name, err)
		}
		s.ExpireDay = &d
	}
	return s, nil
}

// passwordOp sets pw for user: a hash as given, plain text hashed with the
// target's own method (skipped when the current hash already matches it),
// RANDOM generated and printed to the console. A method we cannot hash with
// (yescrypt) falls back to SHA-512, and the plan line says so.
//
// With lock set (lock_passwd), a current hash that is the wanted one behind
// the "!" of an earlier lock counts as already set, so a second run plans
// nothing.
func passwordOp(user string, pw config.Password, expire, lock bool) op {
	return func(db *accounts.DB, env *modules.Env) (bool, string, error) {
		cur, err := db.PasswordHash(user)
		if err != nil {
			return false, "", err
		}
		if lock {
			cur = strings.TrimPrefix(cur, "!")
		}
		detail := pw.String()
		var hash string
		switch pw.Kind {
		case config.PasswordHash:
			hash = pw.Value
		case config.PasswordPlain:
			if accounts.VerifyPassword(cur, pw.Value) {
				hash = cur
				break
			}
			detail = withHashNote(detail, db.Hash, env)
			if env == nil {
				hash = "$6$planned"
				break
			}
			if hash, err = accounts.HashPassword(db.Hash, pw.Value); err != nil {
				return false, "", err
			}
		case config.PasswordRandom:
			detail = withHashNote(detail, db.Hash, env)
			if env == nil {
				hash = "$6$planned"
				break
			}
			plain, err := accounts.RandomPassword()
			if err != nil {
				return false, "", err
			}
			if hash, err = accounts.HashPassword(db.Hash, plain); err != nil {
				return false, "", err
			}
			// The one place a secret is shown, as cloud-init does: the
			// operator needs it to log in.
			if env.Secret != nil {
				env.Secret(plain)
			}
			if env.Console != nil {
				fmt.Fprintf(env.Console, "Set the following 'random' passwords\n%s:%s\n", user, plain)
			}
		default:
			return false, "", nil
		}
		changed := false
		if hash != cur {
			if err := db.SetPassword(user, hash); err != nil {
				return false, "", err
			}
			changed = true
		}
		if expire {
			c, err := db.ExpirePassword(user)
			if err != nil {
				return false, "", err
			}
			changed = changed || c
			detail += ", expired"
		}
		return changed, detail, nil
	}
}

// withHashNote adds the fallback warning of a method we cannot hash with to
// the plan line and, when applying, to the console.
func withHashNote(detail string, m accounts.HashMethod, env *modules.Env) string {
	note := m.Fallback()
	if note == "" {
		return detail
	}
	if env != nil && env.Console != nil {
		fmt.Fprintln(env.Console, note)
	}
	return detail + "; " + note
}

func (p *planner) passwords() error {
	for _, u := range uniqueUsers(p.cfg.Users) {
		if u.Password.Kind == config.PasswordNone {
			continue
		}
		if err := p.addPassword(u.Name, u.Origin, u.Password, false, u.LockPassword); err != nil {
			return err
		}
	}
	return nil
}

// addPassword plans a password step. A plain-text password's hash can
// begin as soon as the plan stands (Step.Prefetch), if the engine did not
// begin it already (accounts.BeginHash): HashPassword takes it then.
func (p *planner) addPassword(user string, origin config.Origin, pw config.Password, expire, lock bool) error {
	n := len(p.steps)
	if err := p.add("set password", user, origin, passwordOp(user, pw, expire, lock)); err != nil {
		return err
	}
	if pw.Kind == config.PasswordPlain && len(p.steps) > n {
		method := p.sim.Hash
		p.steps[n].Prefetch = func() {
			accounts.BeginHash(pw.Value, func() (accounts.HashMethod, error) { return method, nil })
		}
	}
	return nil
}

// locks applies lock_passwd: "!" in front of the hash, as passwd -l. A new
// user's "!" already counts as locked.
//
// A user whose password chpasswd sets later gets no lock step: chpasswd
// replaces the whole field, so the lock could not survive it, and planning
// one would make a dry run on an already provisioned tree list a lock and
// a re-set password that change nothing in the end.
func (p *planner) locks() error {
	reset := map[string]bool{}
	for _, c := range p.cfg.Passwords {
		reset[c.User] = true
	}
	for _, u := range uniqueUsers(p.cfg.Users) {
		if !u.LockPassword || reset[u.Name] {
			continue
		}
		name := u.Name
		err := p.add("lock password", name, u.Origin, func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
			c, err := db.LockPassword(name)
			return c, "", err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// chpasswd applies cfg.Passwords after the users exist (cloud-init's
// set_passwords runs after users_groups).
func (p *planner) chpasswd() error {
	for _, c := range p.cfg.Passwords {
		if p.sim.Passwd.Lookup(c.User) == nil {
			return wrap(c.Origin, fmt.Errorf("chpasswd: user %q: %w", c.User, accounts.ErrNotFound))
		}
		if err := p.addPassword(c.User, c.Origin, c.Password, c.Expire, false); err != nil {
			return err
		}
	}
	return nil
}

// sudoBlock is what cloud-init appends per user.
func sudoBlock(u config.User) string {
	var b strings.Builder
	b.WriteString("\n# User rules for " + u.Name + "\n")
	for _, r := range u.Sudo {
		b.WriteString(u.Name + " " + r + "\n")
	}
	return b.String()
}

func (p *planner) sudo() error {
	for _, u := range uniqueUsers(p.cfg.Users) {
		if len(u.Sudo) == 0 {
			continue
		}
		block := sudoBlock(u)
		if cur, err := p.root.ReadFile(SudoersFile); err == nil && strings.Contains(string(cur), block) {
			continue
		}
		p.addFS("write sudo rules", SudoersFile, fmt.Sprintf("user %s, %d rules", u.Name, len(u.Sudo)), u.Origin,
			func(env *modules.Env) error { return writeSudo(env.Root, block) }, sudoersMain)
	}
	return nil
}

// writeSudo appends block to SudoersFile unless present, and makes sure
// sudoers includes /etc/sudoers.d, like cloud-init's write_sudo_rules.
func writeSudo(root *rootfs.Root, block string) error {
	if err := ensureSudoersInclude(root); err != nil {
		return err
	}
	if !root.Exists("/etc/sudoers.d") {
		if err := root.MkdirAll("/etc/sudoers.d", 0o750, rootfs.RootOwner); err != nil {
			return err
		}
	}
	cur, err := root.ReadFile(SudoersFile)
	if err != nil {
		cur = []byte("# Created by provision\n")
	}
	if strings.Contains(string(cur), block) {
		return nil
	}
	return root.WriteFile(SudoersFile, append(cur, block...), 0o440, rootfs.RootOwner)
}

func ensureSudoersInclude(root *rootfs.Root) error {
	base, err := root.ReadFile(sudoersMain)
	baseExists := err == nil
	if !baseExists {
		// openSUSE ships the default in /usr/etc/sudoers.
		base, _ = root.ReadFile("/usr/etc/sudoers")
	}
	for _, line := range strings.Split(string(base), "\n") {
		f := strings.Fields(strings.TrimSpace(line))
		if len(f) == 2 && (f[0] == "#includedir" || f[0] == "@includedir") && path.Clean(f[1]) == "/etc/sudoers.d" {
			return nil
		}
	}
	add := "\n# Added by provision\n#includedir /etc/sudoers.d\n"
	mode, owner := fsMode(root, sudoersMain)
	if !baseExists && len(base) == 0 {
		add = "# See sudoers(5) for more information on \"#include\" directives:\n" + add
	}
	return root.WriteFile(sudoersMain, append(base, add...), mode, owner)
}

// fsMode keeps an existing file's mode; sudoers is 0440 root:root.
func fsMode(root *rootfs.Root, p string) (fs.FileMode, rootfs.Owner) {
	if st, err := root.Stat(p); err == nil {
		return st.Mode().Perm(), rootfs.RootOwner
	}
	return 0o440, rootfs.RootOwner
}

// homeDirs creates the homes of the users this plan creates (useradd -m).
func (p *planner) homeDirs() error {
	for _, u := range p.homes {
		l := p.sim.Passwd.Lookup(u.Name)
		if l == nil {
			continue
		}
		home, uid, gid := l.Fields[accounts.PwDir], l.Int(accounts.PwUID), l.Int(accounts.PwGID)
		if p.root.Exists(home) {
			continue // useradd leaves an existing home (and skel) alone
		}
		mode := accounts.HomeMode(p.sim.Defs)
		skel := p.sim.SkelDirs()
		name := u.Name
		p.addFS("create home", home, fmt.Sprintf("owner %d:%d, mode %04o", uid, gid, mode), u.Origin, func(env *modules.Env) error {
			// Re-read the owner: the uid is what the create step wrote.
			uid, gid, home, err := homesPasswd(env).LookupUser(name)
			if err != nil {
				return err
			}
			_, err = accounts.CreateHome(env.Root, home, uid, gid, mode, skel)
			return err
		})
		p.steps[len(p.steps)-1].Batch = homesBatch
	}
	return nil
}

// aging applies expiredate and inactive to users that already existed
// (new users got them from useradd).
func (p *planner) aging() error {
	created := map[string]bool{}
	for _, s := range p.steps {
		if s.Action == "create user" {
			created[s.Target] = true
		}
	}
	for _, u := range uniqueUsers(p.cfg.Users) {
		if created[u.Name] {
			continue
		}
		name := u.Name
		if u.ExpireDate != "" {
			day, err := accounts.ParseDay(u.ExpireDate)
			if err != nil {
				return wrap(u.Origin, err)
			}
			err = p.add("set expiry date", name, u.Origin, func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
				c, err := db.SetExpireDate(name, day)
				return c, u.ExpireDate, err
			})
			if err != nil {
				return err
			}
		}
		if u.Inactive != nil {
			n := *u.Inactive
			err := p.add("set inactive days", name, u.Origin, func(db *accounts.DB, _ *modules.Env) (bool, string, error) {
				c, err := db.SetInactive(name, n)
				return c, strconv.Itoa(n) + " days", err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// homesBatch is the batch of the create-home steps: /etc/passwd is read
// once for all of them (as the databases' batch wrote it), not once per
// home, which made a run of n new users read n copies of an n-line file.
const homesBatch = "home directories"

type homesState struct {
	passwd *accounts.File
	err    error
}

func (*homesState) Flush() error { return nil }
func (*homesState) Release()     {}

// LookupUser is accounts.LookupUser on the passwd the batch read.
func (s *homesState) LookupUser(name string) (uid, gid int, home string, err error) {
	if s.err != nil {
		return -1, -1, "", s.err
	}
	return accounts.LookupUserIn(s.passwd, name)
}

func homesPasswd(env *modules.Env) *homesState {
	if s, ok := env.Batch(homesBatch).(*homesState); ok {
		return s
	}
	f, err := accounts.Load(env.Root, accounts.PasswdKind)
	s := &homesState{passwd: f, err: err}
	env.OpenBatch(homesBatch, s)
	return s
}
