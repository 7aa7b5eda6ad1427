package ignition

import (
	"github.com/provision-dev/provision/provision/config"
)

func (p *parser) user(n *node, path string) {
	f := p.fields(n, path, map[string]int{
		"name": 0, "passwordHash": 0, "sshAuthorizedKeys": 0, "uid": 0, "gecos": 0,
		"homeDir": 0, "noCreateHome": 0, "primaryGroup": 0, "groups": 0,
		"noUserGroup": 0, "noLogInit": 0, "shell": 0, "system": 0, "shouldExist": 2,
	})
	if f == nil {
		return
	}
	name := p.str(f, path, "name")
	if name == nil || *name == "" {
		p.failf(n.off, path, "name is required")
		return
	}
	if dup, ok := p.seenUser(*name, n.off); ok {
		p.failf(n.off, path, "user %q is listed twice (also at %s)", *name, p.lineCol(dup))
		return
	}
	if b := p.boolean(f, path, "shouldExist"); b != nil && !*b {
		p.unsupported(f["shouldExist"].off, join(path, "shouldExist"), "deleting users (shouldExist: false) is")
		return
	}
	u := config.User{Origin: p.at(n.off), Name: *name}
	if s := p.str(f, path, "passwordHash"); s != nil {
		// Ignition runs useradd/usermod --password with the hash, and with
		// "*" (no password login) for an empty one.
		h := *s
		if h == "" {
			h = "*"
		}
		u.Password = config.Password{Kind: config.PasswordHash, Value: h}
	} else {
		// Without one, Ignition creates the user with "*" too (an existing
		// user's password is left alone).
		u.InitialPassword = "*"
	}
	u.UID = p.integer(f, path, "uid")
	if s := p.str(f, path, "gecos"); s != nil {
		u.Gecos = *s
	}
	if s := p.str(f, path, "homeDir"); s != nil {
		u.HomeDir = *s
	}
	if b := p.boolean(f, path, "noCreateHome"); b != nil {
		u.NoCreateHome = *b
	}
	if s := p.str(f, path, "primaryGroup"); s != nil {
		u.PrimaryGroup = *s
	}
	u.Groups = p.strings(f, path, "groups")
	if b := p.boolean(f, path, "noUserGroup"); b != nil {
		u.NoUserGroup = *b
	}
	// noLogInit asks useradd not to touch lastlog/faillog; provision edits
	// the account files natively and never writes those, so either value
	// is already what happens.
	p.boolean(f, path, "noLogInit")
	if s := p.str(f, path, "shell"); s != nil {
		u.Shell = *s
	}
	if b := p.boolean(f, path, "system"); b != nil {
		u.System = *b
	}
	for i, k := range p.list(f, path, "sshAuthorizedKeys") {
		kp := index(join(path, "sshAuthorizedKeys"), i)
		if k.kind != kindString {
			p.failf(k.off, kp, "must be a string, not %s", k.kind)
			continue
		}
		p.out.SSHKeys = append(p.out.SSHKeys, config.AuthorizedKey{Origin: p.at(k.off), User: *name, Key: k.str})
	}
	p.out.Users = append(p.out.Users, u)
}

func (p *parser) seenUser(name string, off int) (int, bool) {
	return p.seen("user\x00"+name, off)
}

func (p *parser) seen(key string, off int) (int, bool) {
	if p.nodes == nil {
		p.nodes = map[string]nodeDef{}
	}
	if prev, ok := p.nodes[key]; ok {
		return prev.off, true
	}
	p.nodes[key] = nodeDef{path: key, off: off}
	return 0, false
}

func (p *parser) group(n *node, path string) {
	f := p.fields(n, path, map[string]int{
		"name": 0, "gid": 0, "passwordHash": 0, "system": 0, "shouldExist": 2,
	})
	if f == nil {
		return
	}
	name := p.str(f, path, "name")
	if name == nil || *name == "" {
		p.failf(n.off, path, "name is required")
		return
	}
	if dup, ok := p.seen("group\x00"+*name, n.off); ok {
		p.failf(n.off, path, "group %q is listed twice (also at %s)", *name, p.lineCol(dup))
		return
	}
	if b := p.boolean(f, path, "shouldExist"); b != nil && !*b {
		p.unsupported(f["shouldExist"].off, join(path, "shouldExist"), "deleting groups (shouldExist: false) is")
		return
	}
	g := config.Group{Origin: p.at(n.off), Name: *name, GID: p.integer(f, path, "gid")}
	if s := p.str(f, path, "passwordHash"); s != nil {
		g.PasswordHash = *s
	}
	if b := p.boolean(f, path, "system"); b != nil {
		g.System = *b
	}
	p.out.Groups = append(p.out.Groups, g)
}
