package cloudinit

import (
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/provision-dev/provision/provision/config"
)

// disableUserOpts is cloud-init's ssh_util.DISABLE_USER_OPTS: the options
// prefixed to root's keys when disable_root is true.
const disableUserOpts = `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"$USER\" rather than the user \"$DISABLE_USER\".';echo;sleep 10;exit 142"`

// normalizeKeys returns a copy of a mapping with '-' in keys turned into
// '_', as cloud-init does for user entries.
func normalizeKeys(n *node) *node {
	if n == nil || n.kind != kMap {
		return n
	}
	out := &node{kind: kMap, origin: n.origin}
	for i, k := range n.keys {
		nk := *k
		nk.value = strings.TrimSpace(strings.ReplaceAll(k.value, "-", "_"))
		if nk.value == "" {
			continue
		}
		out.set(&nk, n.vals[i])
	}
	return out
}

// ---- typed readers; each reports a type error at the value's line:col ----

func (p *parser) typeErr(n *node, path, want string) {
	p.errorf(n.origin, "%s: expected %s, got %s", path, want, n.describe())
}

// str accepts any non-null scalar but a boolean, as cloud-init's str().
func (p *parser) str(n *node, path string) (string, bool) {
	switch n.kind {
	case kStr, kInt, kFloat, kTimestamp:
		return n.value, true
	}
	p.typeErr(n, path, "string")
	return "", false
}

func (p *parser) boolean(n *node, path string) (bool, bool) {
	switch n.kind {
	case kBool:
		return n.value == "true", true
	case kStr, kInt:
		switch strings.ToLower(strings.TrimSpace(n.value)) {
		case "true", "yes", "on", "1":
			return true, true
		case "false", "no", "off", "0":
			return false, true
		}
	}
	p.typeErr(n, path, "boolean")
	return false, false
}

func (p *parser) integer(n *node, path string) (int, bool) {
	switch n.kind {
	case kInt:
		if v, err := intValue(n.value); err == nil && v >= -1<<31 && v < 1<<32 {
			return int(v), true
		}
	case kStr:
		if v, err := strconv.Atoi(strings.TrimSpace(n.value)); err == nil {
			return v, true
		}
	}
	p.typeErr(n, path, "integer")
	return 0, false
}

// strOrList reads a list of strings, or a comma-separated string.
func (p *parser) strOrList(n *node, path string) ([]string, bool) {
	var out []string
	switch n.kind {
	case kNull:
		return nil, true
	case kStr:
		for _, s := range strings.Split(n.value, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out, true
	case kSeq:
		for i, it := range n.items {
			s, ok := p.str(it, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			out = append(out, strings.TrimSpace(s))
		}
		return out, true
	}
	p.typeErr(n, path, "list or comma-separated string")
	return nil, false
}

func uniqSorted(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// ---- the top-level cloud-config ----

func (p *parser) cloudConfig(root *node) {
	if root == nil {
		root = &node{kind: kMap}
	}
	handled := p.readKeys(root)
	for _, k := range root.keys {
		if handled[k.value] {
			continue
		}
		// Only a key the parser did not read needs the table (built on
		// first use, with every key's schema: a config of applied keys
		// alone never builds it).
		spec, known := cloudConfigKeys()[k.value]
		switch {
		case known && spec.status == keyIgnored:
			p.warnf(k.origin, "%s: not supported by provision; ignored", k.value)
		case known:
			// merge_how, vendor_data...: read before the parts merged.
		default:
			p.warnf(k.origin, "unknown cloud-config key %q", k.value)
		}
	}
}

// readKeys reads every top-level key provision applies and returns the
// names it read; a test holds them to the key table of schema.go, which
// is what decides whether a key is unknown.
func (p *parser) readKeys(root *node) map[string]bool {
	handled := map[string]bool{}
	get := func(key string) *node {
		handled[key] = true
		return root.get(key)
	}

	p.usersAndKeys(root, get)
	p.groups(get("groups"))
	if n := get("ssh_pwauth"); n != nil {
		p.sshPwauth(n)
	}
	p.sshHostKeys(root.origin, get("ssh_deletekeys"), get("ssh_genkeytypes"), get("ssh_keys"))
	p.writeFiles(get("write_files"))
	p.caCerts(get("ca_certs"), get("ca-certs"))
	p.randomSeed(get("random_seed"))
	p.finalMessage(get("final_message"))
	p.growpart(get("growpart"))
	p.resizeRootfs(get("resize_rootfs"))
	p.powerState(get("power_state"))
	p.commands(get("bootcmd"), "bootcmd", config.ScriptBootcmd)
	p.commands(get("runcmd"), "runcmd", config.ScriptRuncmd)
	p.packages(get("packages"))
	for _, k := range []string{"package_update", "apt_update"} {
		if n := get(k); n != nil && p.cfg.PackageUpdate == nil {
			if b, ok := p.boolean(n, k); ok {
				p.cfg.PackageUpdate = &config.BoolSetting{Value: b, Origin: n.origin}
			}
		}
	}
	for _, k := range []string{"package_upgrade", "apt_upgrade"} {
		if n := get(k); n != nil && p.cfg.PackageUpgrade == nil {
			if b, ok := p.boolean(n, k); ok {
				p.cfg.PackageUpgrade = &config.BoolSetting{Value: b, Origin: n.origin}
			}
		}
	}
	p.zypper(get("zypper"))
	p.yumRepos(get("yum_repos"))
	p.apt(get("apt"))
	p.hostname(get("hostname"), get("fqdn"), get("prefer_fqdn_over_hostname"))
	if n := get("preserve_hostname"); n != nil {
		if b, ok := p.boolean(n, "preserve_hostname"); ok {
			p.cfg.System.PreserveHostname = &config.BoolSetting{Value: b, Origin: n.origin}
		}
	}
	if n := get("create_hostname_file"); n != nil {
		if b, ok := p.boolean(n, "create_hostname_file"); ok {
			p.cfg.System.CreateHostnameFile = &config.BoolSetting{Value: b, Origin: n.origin}
		}
	}
	p.manageEtcHosts(get("manage_etc_hosts"))
	p.setting(get("timezone"), "timezone", &p.cfg.System.Timezone)
	if n := get("locale"); n != nil && !(n.kind == kBool && n.value == "false") {
		p.setting(n, "locale", &p.cfg.System.Locale)
	}
	p.keyboard(get("keyboard"))
	p.ntp(get("ntp"))
	p.mounts(get("mounts"), get("mount_default_fields"))
	p.swap(get("swap"))
	return handled
}

func (p *parser) setting(n *node, path string, dst *config.Setting) {
	if n == nil || n.kind == kNull {
		return
	}
	if s, ok := p.str(n, path); ok && s != "" {
		*dst = config.Setting{Value: s, Origin: n.origin}
	}
}

// ---- users, groups, keys, passwords ----

type userEntry struct {
	name   string
	fields *node // normalized mapping; nil for a bare name
	origin config.Origin
}

// normalizeUsers is cloud-init's _normalize_users up to (not including)
// the default user substitution.
func (p *parser) normalizeUsers(n *node) []userEntry {
	var order []string
	users := map[string]*userEntry{}
	addName := func(name string, o config.Origin) {
		name = strings.TrimSpace(name)
		if name == "" {
			return
		}
		if _, ok := users[name]; !ok {
			order = append(order, name)
			users[name] = &userEntry{name: name, origin: o}
		}
	}
	addDict := func(m *node, name string, o config.Origin) {
		fields := normalizeKeys(m)
		if nn := fields.get("name"); nn != nil {
			s, ok := p.str(nn, "users.name")
			if !ok {
				return
			}
			name = s
			fields = fields.shallow()
			fields.del("name")
		}
		if name == "" {
			name = "default"
		}
		prev, ok := users[name]
		if !ok {
			order = append(order, name)
			users[name] = &userEntry{name: name, fields: fields, origin: o}
			return
		}
		// The first definition wins, key by key (mergemanydict).
		prev.fields = mergeOver(prev.fields, fields)
	}
	switch n.kind {
	case kNull:
	case kStr:
		names, _ := p.strOrList(n, "users")
		for _, s := range uniqSorted(names) {
			addName(s, n.origin)
		}
	case kMap:
		for i, k := range n.keys {
			v := n.vals[i]
			switch {
			case v.kind == kMap:
				addDict(v, k.value, v.origin)
			case v.isScalar():
				if v.truthy() {
					addName(k.value, k.origin)
				}
			default:
				p.errorf(v.origin, "users.%s: expected mapping or boolean, got %s", k.value, v.describe())
			}
		}
	case kSeq:
		for i, it := range n.items {
			path := fmt.Sprintf("users[%d]", i)
			switch it.kind {
			case kStr, kSeq:
				names, ok := p.strOrList(it, path)
				if ok {
					for _, s := range names {
						addName(s, it.origin)
					}
				}
			case kMap:
				addDict(it, "", it.origin)
			default:
				p.typeErr(it, path, "string or mapping")
			}
		}
	default:
		p.typeErr(n, "users", "list")
	}
	out := make([]userEntry, 0, len(order))
	for _, name := range order {
		out = append(out, *users[name])
	}
	return out
}

func (p *parser) usersAndKeys(root *node, get func(string) *node) {
	// The default user: the target's, possibly renamed or changed by the
	// legacy "user:" key, which also puts "default" into users.
	var def *config.User
	if p.opts.DefaultUser != nil {
		d := *p.opts.DefaultUser
		d.Groups = append([]string(nil), d.Groups...)
		d.Sudo = append([]string(nil), d.Sudo...)
		def = &d
	}
	usersNode := get("users")
	var oldUser *node
	if n := get("user"); n != nil && !(n.kind == kNull || n.kind == kStr && n.value == "") {
		switch n.kind {
		case kStr:
			oldUser = &node{kind: kMap, origin: n.origin}
			oldUser.set(&node{kind: kStr, value: "name", origin: n.origin}, n)
		case kMap:
			oldUser = normalizeKeys(n)
		default:
			p.typeErr(n, "user", "string or mapping")
		}
	}
	if oldUser != nil {
		if def == nil {
			def = &config.User{Origin: oldUser.origin, LockPassword: true}
		}
		if nn := oldUser.get("name"); nn != nil {
			if s, ok := p.str(nn, "user.name"); ok {
				def.Name = s
				def.Origin = oldUser.origin
			}
		}
		if def.Name == "" {
			p.errorf(oldUser.origin, "user: name is required")
			def = nil
		} else {
			p.userFields(def, oldUser, "user", nil)
		}
	}

	var entries []userEntry
	if usersNode == nil {
		// cloud-init's base configuration says users: [default].
		entries = []userEntry{{name: "default"}}
	} else {
		entries = p.normalizeUsers(usersNode)
	}
	if oldUser != nil {
		found := false
		for _, e := range entries {
			found = found || e.name == "default"
		}
		if !found {
			entries = append(entries, userEntry{name: "default", origin: oldUser.origin})
		}
	}

	// Replace the "default" entry by the real default user, moved last, as
	// cloud-init's dict re-insertion does.
	defName := ""
	var defEntry, parsed *userEntry
	var rest []userEntry
	for i := range entries {
		if entries[i].name == "default" {
			defEntry = &entries[i]
		}
	}
	for i := range entries {
		e := entries[i]
		if e.name == "default" {
			continue
		}
		if defEntry != nil && def != nil && e.name == def.Name {
			parsed = &entries[i]
			continue
		}
		rest = append(rest, e)
	}
	type built struct {
		u      config.User
		fields *node
		path   string
	}
	var all []built
	for _, e := range rest {
		u := config.User{Origin: e.origin, Name: e.name, LockPassword: true}
		all = append(all, built{u: u, fields: e.fields, path: "users." + e.name})
	}
	if defEntry != nil && def != nil {
		defName = def.Name
		u := *def
		var fields *node
		var parsedGroups []string
		if parsed != nil {
			fields = parsed.fields
			if g := parsed.fields.get("groups"); g != nil {
				parsedGroups, _ = p.strOrList(g, "users."+defName+".groups")
			}
			u.Origin = parsed.origin
		} else if defEntry.origin.Line > 0 {
			u.Origin = defEntry.origin
		}
		fields = mergeOver(fields, defEntry.fields)
		if fields != nil {
			// groups are the union of the entry's and the distribution's;
			// a "default" entry's own groups are lost, as in cloud-init.
			fields = fields.shallow()
			fields.del("groups")
		}
		u.Groups = uniqSorted(append(parsedGroups, def.Groups...))
		all = append(all, built{u: u, fields: fields, path: "users." + defName})
	}

	for i := range all {
		b := &all[i]
		var keys []sshKey
		redirect := p.userFields(&b.u, b.fields, b.path, &keys)
		p.cfg.Users = append(p.cfg.Users, b.u)
		for _, k := range uniqKeys(keys) {
			p.cfg.SSHKeys = append(p.cfg.SSHKeys, config.AuthorizedKey{Origin: k.origin, User: b.u.Name, Key: k.key})
		}
		if redirect != nil {
			switch {
			case defName == "":
				p.warnf(redirect.origin, "%s.ssh_redirect_user: there is no default user to redirect to", b.path)
			case len(p.metaKeys) == 0:
				p.warnf(redirect.origin, "%s.ssh_redirect_user: no public keys in meta-data to redirect", b.path)
			default:
				prefix := strings.ReplaceAll(strings.ReplaceAll(disableUserOpts, "$USER", defName), "$DISABLE_USER", b.u.Name)
				for _, k := range uniqKeys(p.metaKeys) {
					p.cfg.SSHKeys = append(p.cfg.SSHKeys, config.AuthorizedKey{Origin: k.origin, User: b.u.Name, Key: k.key, Prefix: prefix})
				}
			}
		}
	}

	p.rootKeys(root, get, defName)
	p.passwords(get("chpasswd"), get("password"), defName)
}

func uniqKeys(in []sshKey) []sshKey {
	seen := map[string]bool{}
	var out []sshKey
	for _, k := range in {
		if !seen[k.key] {
			seen[k.key] = true
			out = append(out, k)
		}
	}
	return out
}

// rootKeys is cc_ssh's apply_credentials: meta-data keys and the top-level
// ssh_authorized_keys go to the default user, and to root — behind
// cloud-init's refusal prefix when disable_root is true (the default).
func (p *parser) rootKeys(root *node, get func(string) *node, defName string) {
	var keys []sshKey
	allow := true
	if n := get("allow_public_ssh_keys"); n != nil {
		allow, _ = p.boolean(n, "allow_public_ssh_keys")
	}
	if allow {
		keys = append(keys, p.metaKeys...)
	}
	if n := get("ssh_authorized_keys"); n != nil {
		keys = append(keys, p.keyList(n, "ssh_authorized_keys")...)
	}
	disableRoot := true
	if n := get("disable_root"); n != nil {
		disableRoot, _ = p.boolean(n, "disable_root")
	}
	opts := disableUserOpts
	if n := get("disable_root_opts"); n != nil {
		if s, ok := p.str(n, "disable_root_opts"); ok {
			opts = s
		}
	}
	keys = uniqKeys(keys)
	if defName != "" {
		for _, k := range keys {
			p.cfg.SSHKeys = append(p.cfg.SSHKeys, config.AuthorizedKey{Origin: k.origin, User: defName, Key: k.key})
		}
	}
	prefix := ""
	if disableRoot {
		u := defName
		if u == "" {
			u = "NONE"
		}
		prefix = strings.ReplaceAll(strings.ReplaceAll(opts, "$USER", u), "$DISABLE_USER", "root")
	}
	for _, k := range keys {
		p.cfg.SSHKeys = append(p.cfg.SSHKeys, config.AuthorizedKey{Origin: k.origin, User: "root", Key: k.key, Prefix: prefix})
	}
}

// keyList reads ssh_authorized_keys: a list, a single string, or (per user)
// a mapping whose values are the keys. A comment entry ("# ...") is
// dropped with a warning: cloud-init's key parser finds no key in it and
// writes nothing.
func (p *parser) keyList(n *node, path string) []sshKey {
	var out []sshKey
	add := func(v *node, path string) {
		s, ok := p.str(v, path)
		s = strings.TrimSpace(s)
		switch {
		case !ok || s == "":
		case strings.HasPrefix(s, "#"):
			p.warnf(v.origin, "%s: a comment, not a key; skipped, as cloud-init does", path)
		default:
			out = append(out, sshKey{key: s, origin: v.origin})
		}
	}
	switch n.kind {
	case kNull:
	case kStr:
		add(n, path)
	case kSeq:
		for i, it := range n.items {
			add(it, fmt.Sprintf("%s[%d]", path, i))
		}
	case kMap:
		for i, k := range n.keys {
			add(n.vals[i], path+"."+k.value)
		}
	default:
		p.typeErr(n, path, "list of keys")
	}
	return out
}

// userFields applies one user's settings to u. It returns the
// ssh_redirect_user node when that is set to true.
func (p *parser) userFields(u *config.User, fields *node, path string, keys *[]sshKey) (redirect *node) {
	if fields == nil {
		return nil
	}
	var passwd, hashed, plain *node
	for i, k := range fields.keys {
		v := fields.vals[i]
		fp := path + "." + k.value
		switch k.value {
		case "name", "default":
		case "gecos":
			u.Gecos, _ = p.str(v, fp)
		case "groups":
			if v.kind == kMap {
				var gs []string
				for _, gk := range v.keys {
					gs = append(gs, gk.value)
				}
				u.Groups = gs
			} else if gs, ok := p.strOrList(v, fp); ok {
				u.Groups = gs
			}
		case "primary_group":
			u.PrimaryGroup, _ = p.str(v, fp)
		case "sudo":
			switch v.kind {
			case kNull:
				u.Sudo = nil
			case kBool:
				if v.value == "true" {
					p.typeErr(v, fp, "sudo rule string, list, false or null")
				}
				u.Sudo = nil
			case kSeq:
				u.Sudo = nil
				for j, it := range v.items {
					if s, ok := p.str(it, fmt.Sprintf("%s[%d]", fp, j)); ok {
						u.Sudo = append(u.Sudo, s)
					}
				}
			default:
				if s, ok := p.str(v, fp); ok {
					u.Sudo = []string{s}
				}
			}
		case "shell":
			u.Shell, _ = p.str(v, fp)
		case "homedir":
			u.HomeDir, _ = p.str(v, fp)
		case "no_create_home":
			u.NoCreateHome, _ = p.boolean(v, fp)
		case "system":
			u.System, _ = p.boolean(v, fp)
		case "no_user_group":
			u.NoUserGroup, _ = p.boolean(v, fp)
		case "uid":
			if id, ok := p.integer(v, fp); ok {
				u.UID = &id
			}
		case "lock_passwd":
			u.LockPassword, _ = p.boolean(v, fp)
		case "passwd":
			passwd = v
		case "hashed_passwd":
			hashed = v
		case "plain_text_passwd":
			plain = v
		case "ssh_authorized_keys":
			if keys != nil {
				*keys = append(*keys, p.keyList(v, fp)...)
			}
		case "expiredate":
			if v.kind == kNull {
				continue
			}
			if s, ok := p.str(v, fp); ok {
				if !regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`).MatchString(s) {
					p.errorf(v.origin, "%s: expected YYYY-MM-DD, got %q", fp, s)
				}
				u.ExpireDate = s
			}
		case "inactive":
			if v.kind == kNull {
				continue
			}
			if d, ok := p.integer(v, fp); ok {
				u.Inactive = &d
			}
		case "ssh_redirect_user":
			if b, ok := p.boolean(v, fp); ok && b {
				redirect = v
			}
		case "create_groups", "no_log_init":
			p.boolean(v, fp)
		case "ssh_import_id", "snapuser", "doas", "selinux_user", "sudo_user":
			p.warnf(k.origin, "%s: not supported by provision; ignored", fp)
		default:
			p.warnf(k.origin, "unknown user key %q (%s)", k.value, fp)
		}
	}
	// useradd --password first, then plain_text_passwd, then hashed_passwd:
	// the last one set wins.
	for _, c := range []struct {
		n    *node
		kind config.PasswordKind
		key  string
	}{{passwd, config.PasswordHash, "passwd"}, {plain, config.PasswordPlain, "plain_text_passwd"}, {hashed, config.PasswordHash, "hashed_passwd"}} {
		if c.n == nil {
			continue
		}
		if c.n.kind == kNull {
			u.Password = config.Password{Kind: config.PasswordHash}
			continue
		}
		if s, ok := p.str(c.n, path+"."+c.key); ok {
			kind := c.kind
			if s == "" {
				kind = config.PasswordHash // explicitly blank
			}
			u.Password = config.Password{Kind: kind, Value: s}
		}
	}
	return redirect
}

// groups is cloud-init's _normalize_groups.
func (p *parser) groups(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	type grp struct {
		members []string
		origin  config.Origin
	}
	var order []string
	gs := map[string]*grp{}
	add := func(name string, members []string, o config.Origin) {
		name = strings.TrimSpace(name)
		if name == "" {
			return
		}
		g, ok := gs[name]
		if !ok {
			g = &grp{origin: o}
			gs[name] = g
			order = append(order, name)
		}
		g.members = append(g.members, members...)
	}
	members := func(v *node, path string) []string {
		if v.kind == kMap || v.kind == kBool {
			p.errorf(v.origin, "%s: bad group member type %s", path, v.describe())
			return nil
		}
		m, _ := p.strOrList(v, path)
		return m
	}
	switch n.kind {
	case kStr:
		names, _ := p.strOrList(n, "groups")
		for _, g := range names {
			add(g, nil, n.origin)
		}
	case kSeq:
		for i, it := range n.items {
			path := fmt.Sprintf("groups[%d]", i)
			switch it.kind {
			case kStr:
				add(it.value, nil, it.origin)
			case kMap:
				for j, k := range it.keys {
					add(k.value, members(it.vals[j], path+"."+k.value), k.origin)
				}
			default:
				p.typeErr(it, path, "group name or mapping")
			}
		}
	case kMap:
		for j, k := range n.keys {
			add(k.value, members(n.vals[j], "groups."+k.value), k.origin)
		}
	default:
		p.typeErr(n, "groups", "list, mapping or string")
	}
	for _, name := range order {
		g := gs[name]
		p.cfg.Groups = append(p.cfg.Groups, config.Group{Origin: g.origin, Name: name, Members: uniqSorted(g.members)})
	}
}

var chpasswdHashRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\$(1|2a|2y|5|6)(\$.+){2}`) })

// passwords is cc_set_passwords: chpasswd users/list, or password for the
// default user; expire defaults to true and applies to hashed ones too.
func (p *parser) passwords(ch, password *node, defName string) {
	expire := true
	var users, list *node
	if ch != nil && ch.kind != kNull {
		if ch.kind != kMap {
			p.typeErr(ch, "chpasswd", "mapping")
			return
		}
		for i, k := range ch.keys {
			v := ch.vals[i]
			switch k.value {
			case "users":
				users = v
			case "list":
				list = v
			case "expire":
				expire, _ = p.boolean(v, "chpasswd.expire")
			default:
				p.warnf(k.origin, "unknown chpasswd key %q", k.value)
			}
		}
	}
	var changes []config.PasswordChange
	if users != nil && users.kind != kNull {
		if users.kind != kSeq {
			p.typeErr(users, "chpasswd.users", "list")
		} else {
			for i, it := range users.items {
				path := fmt.Sprintf("chpasswd.users[%d]", i)
				if it.kind != kMap {
					p.typeErr(it, path, "mapping")
					continue
				}
				nameN := it.get("name")
				if nameN == nil {
					p.errorf(it.origin, "%s: name is required", path)
					continue
				}
				name, ok := p.str(nameN, path+".name")
				if !ok {
					continue
				}
				typ := "hash"
				if t := it.get("type"); t != nil {
					if typ, ok = p.str(t, path+".type"); !ok {
						continue
					}
				}
				pc := config.PasswordChange{Origin: it.origin, User: name}
				pwN := it.get("password")
				switch typ {
				case "hash", "text":
					if pwN == nil {
						p.errorf(it.origin, "%s: password is required with type %s", path, typ)
						continue
					}
					pw, ok := p.str(pwN, path+".password")
					if !ok {
						continue
					}
					pc.Password = config.Password{Kind: config.PasswordHash, Value: pw}
					if typ == "text" {
						pc.Password.Kind = config.PasswordPlain
					}
				case "RANDOM":
					pc.Password = config.Password{Kind: config.PasswordRandom}
				default:
					p.errorf(it.get("type").origin, "%s.type: expected hash, text or RANDOM, got %q", path, typ)
					continue
				}
				for _, k := range it.keys {
					switch k.value {
					case "name", "type", "password":
					default:
						p.warnf(k.origin, "unknown chpasswd user key %q", k.value)
					}
				}
				changes = append(changes, pc)
			}
		}
	}
	var lines []sshKey // (line, origin)
	if list != nil {
		switch list.kind {
		case kNull:
		case kStr:
			for j, l := range strings.Split(list.value, "\n") {
				if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
					o := list.origin
					if list.origin.Line > 0 {
						o.Line += j + 1 // block scalar content starts on the next line
						o.Column = 0
					}
					lines = append(lines, sshKey{key: l, origin: o})
				}
			}
		case kSeq:
			for j, it := range list.items {
				if s, ok := p.str(it, fmt.Sprintf("chpasswd.list[%d]", j)); ok {
					lines = append(lines, sshKey{key: s, origin: it.origin})
				}
			}
		default:
			p.typeErr(list, "chpasswd.list", "string or list")
		}
	}
	if len(changes) == 0 && len(lines) == 0 && password != nil && password.kind != kNull {
		if pw, ok := p.str(password, "password"); ok && pw != "" {
			if defName == "" {
				p.warnf(password.origin, "password: no default user to set it for")
			} else {
				lines = append(lines, sshKey{key: defName + ":" + pw, origin: password.origin})
			}
		}
	}
	for _, l := range lines {
		user, pw, ok := strings.Cut(l.key, ":")
		if !ok {
			p.errorf(l.origin, "chpasswd: expected user:password, got a line without ':'")
			continue
		}
		pc := config.PasswordChange{Origin: l.origin, User: user}
		switch {
		case chpasswdHashRE().MatchString(pw) && !strings.Contains(pw, ":"):
			pc.Password = config.Password{Kind: config.PasswordHash, Value: pw}
		case pw == "R" || pw == "RANDOM":
			pc.Password = config.Password{Kind: config.PasswordRandom}
		default:
			pc.Password = config.Password{Kind: config.PasswordPlain, Value: pw}
		}
		changes = append(changes, pc)
	}
	for i := range changes {
		changes[i].Expire = expire
	}
	p.cfg.Passwords = append(p.cfg.Passwords, changes...)
}

func (p *parser) sshPwauth(n *node) {
	switch n.kind {
	case kNull:
		return
	case kBool:
		p.cfg.SSHPwauth = &config.BoolSetting{Value: n.value == "true", Origin: n.origin}
		return
	}
	s := strings.ToLower(strings.TrimSpace(n.value))
	switch s {
	case "true", "1", "on", "yes":
		p.cfg.SSHPwauth = &config.BoolSetting{Value: true, Origin: n.origin}
	case "false", "0", "off", "no":
		p.cfg.SSHPwauth = &config.BoolSetting{Value: false, Origin: n.origin}
	case "unchanged":
	default:
		p.warnf(n.origin, "ssh_pwauth: unrecognised value %s; leaving sshd unchanged", n.describe())
	}
}

// ---- files ----

func (p *parser) writeFiles(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kSeq {
		p.typeErr(n, "write_files", "list")
		return
	}
	for i, it := range n.items {
		path := fmt.Sprintf("write_files[%d]", i)
		if it.kind != kMap {
			p.typeErr(it, path, "mapping")
			continue
		}
		f := config.File{Origin: it.origin, Owner: "root", Group: "root"}
		var content, encoding, source *node
		ok := true
		for j, k := range it.keys {
			v := it.vals[j]
			fp := path + "." + k.value
			switch k.value {
			case "path":
				f.Path, ok = p.str(v, fp)
			case "content":
				content = v
			case "encoding":
				encoding = v
			case "source":
				source = v
			case "owner":
				if v.kind == kNull {
					continue
				}
				if s, ok2 := p.str(v, fp); ok2 {
					f.Owner, f.Group = splitOwner(s)
				}
			case "permissions":
				if v.kind == kNull {
					continue
				}
				if m, ok2 := p.permissions(v, fp); ok2 {
					f.Mode = &m
				}
			case "append":
				f.Append, _ = p.boolean(v, fp)
			case "defer":
				f.Defer, _ = p.boolean(v, fp)
			default:
				p.warnf(k.origin, "unknown write_files key %q (%s)", k.value, path)
			}
		}
		if !ok {
			continue
		}
		if f.Path == "" {
			p.errorf(it.origin, "%s: path is required", path)
			continue
		}
		if f.Mode == nil {
			m := fs.FileMode(0o644)
			f.Mode = &m
		}
		if source != nil && source.kind != kNull {
			if source.kind != kMap {
				p.typeErr(source, path+".source", "mapping")
				continue
			}
			if u := source.get("uri"); u != nil {
				f.Source, _ = p.str(u, path+".source.uri")
			}
			if h := source.get("headers"); h != nil {
				p.warnf(h.origin, "%s.source.headers: not supported; fetched without them", path)
			}
			if content != nil && content.kind != kNull && f.Source != "" {
				p.warnf(source.origin, "%s: source and content both given; content is used only if the fetch fails in cloud-init, here source wins", path)
				content = nil
			}
		}
		if f.Source == "" || content != nil {
			data, ok := p.fileContent(content, encoding, path, f.Origin)
			if !ok {
				continue
			}
			f.Contents = data
		}
		p.cfg.Files = append(p.cfg.Files, f)
	}
}

// splitOwner is util.extract_usergroup: "user:group"; missing, "-1" or
// "none" leave that part unchanged (empty here).
func splitOwner(s string) (string, string) {
	u, g, _ := strings.Cut(s, ":")
	u, g = strings.TrimSpace(u), strings.TrimSpace(g)
	norm := func(x string) string {
		if x == "-1" || strings.EqualFold(x, "none") {
			return ""
		}
		return x
	}
	return norm(u), norm(g)
}

// permissions is decode_perms: YAML integers are taken as they are (so 0644
// is octal but 644 is decimal 644 = 01204 — we warn), strings are octal
// ("0644", "644", "0o644").
func (p *parser) permissions(n *node, path string) (fs.FileMode, bool) {
	var v int64
	switch n.kind {
	case kInt:
		var err error
		if v, err = intValue(n.value); err != nil {
			p.typeErr(n, path, "file mode")
			return 0, false
		}
		if s := strings.TrimLeft(n.value, "+"); len(s) > 1 && s[0] != '0' && v <= 0o7777 {
			p.warnf(n.origin, "%s: %s", path, decimalModeHint(s, v))
		}
	case kFloat:
		f, err := strconv.ParseFloat(n.value, 64)
		if err != nil {
			p.typeErr(n, path, "file mode")
			return 0, false
		}
		v = int64(f)
	case kStr:
		s := strings.ReplaceAll(strings.TrimSpace(n.value), "_", "")
		s = strings.TrimPrefix(s, "+")
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
		var err error
		if s == "" {
			err = strconv.ErrSyntax
		} else {
			v, err = strconv.ParseInt(s, 8, 64)
		}
		if err != nil {
			p.errorf(n.origin, "%s: invalid octal file mode %q", path, n.value)
			return 0, false
		}
	default:
		p.typeErr(n, path, "file mode (octal string or integer)")
		return 0, false
	}
	if v < 0 || v > 0o7777 {
		p.errorf(n.origin, "%s: file mode %#o out of range", path, v)
		return 0, false
	}
	return fs.FileMode(v), true
}

// decimalModeHint explains an integer mode written without a leading 0:
// cloud-init takes it as decimal, so the mode is v. It suggests the octal
// string that keeps that mode and, when the digits could be octal, the one
// the author probably meant; both parse back as written.
func decimalModeHint(digits string, v int64) string {
	msg := fmt.Sprintf("%s is a decimal number, mode 0%o as cloud-init reads it; write \"0%o\" (a quoted octal string) to say so", digits, v, v)
	if strings.Trim(digits, "01234567") == "" {
		msg += fmt.Sprintf(", or \"0%s\" for mode 0%s", digits, digits)
	}
	return msg
}

func (p *parser) fileContent(content, encoding *node, path string, o config.Origin) ([]byte, bool) {
	var data []byte
	if content != nil {
		switch content.kind {
		case kNull:
		case kStr, kBinary, kInt, kFloat, kTimestamp:
			data = []byte(content.value)
		case kBool:
			data = []byte(map[string]string{"true": "True", "false": "False"}[content.value])
		default:
			p.typeErr(content, path+".content", "string")
			return nil, false
		}
	}
	if data == nil {
		data = []byte{}
	}
	enc := ""
	if encoding != nil && encoding.kind != kNull {
		s, ok := p.str(encoding, path+".encoding")
		if !ok {
			return nil, false
		}
		enc = strings.ToLower(strings.TrimSpace(s))
	}
	eo := o
	if encoding != nil {
		eo = encoding.origin
	}
	steps := []string{}
	switch enc {
	case "", "text/plain":
	case "gz", "gzip":
		steps = []string{"gz"}
	case "gz+base64", "gzip+base64", "gz+b64", "gzip+b64":
		steps = []string{"b64", "gz"}
	case "b64", "base64":
		steps = []string{"b64"}
	default:
		p.errorf(eo, "%s.encoding: unknown encoding %q (want b64, base64, gz, gzip, gz+b64, gz+base64, gzip+b64, gzip+base64)", path, enc)
		return nil, false
	}
	for _, s := range steps {
		var err error
		switch s {
		case "b64":
			data, err = decodeBase64Lenient(string(data))
			if err != nil {
				p.errorf(eo, "%s.content: invalid base64: %v", path, err)
				return nil, false
			}
		case "gz":
			co := o
			if content != nil {
				co = content.origin
			}
			data, err = gunzipLimited(data, &p.budget, co)
			if err != nil {
				p.errs = append(p.errs, fmt.Errorf("%s: %w", path, err))
				return nil, false
			}
		}
	}
	return data, true
}

// ---- commands and packages ----

func (p *parser) commands(n *node, key string, kind config.ScriptKind) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kSeq {
		p.typeErr(n, key, "list")
		return
	}
	for i, it := range n.items {
		path := fmt.Sprintf("%s[%d]", key, i)
		s := config.Script{Origin: it.origin, Kind: kind, Name: path}
		switch it.kind {
		case kSeq:
			for j, a := range it.items {
				if !a.isScalar() || a.kind == kNull {
					p.typeErr(a, fmt.Sprintf("%s[%d]", path, j), "string")
					continue
				}
				s.Argv = append(s.Argv, pyStr(a))
			}
			if len(s.Argv) == 0 {
				p.errorf(it.origin, "%s: empty command", path)
				continue
			}
		case kStr, kInt, kFloat:
			s.Body = []byte(it.value)
		default:
			p.typeErr(it, path, "string or list")
			continue
		}
		p.cfg.Scripts = append(p.cfg.Scripts, s)
	}
}

// pyStr renders a scalar the way Python's str() would for shellify.
func pyStr(n *node) string {
	if n.kind == kBool {
		if n.value == "true" {
			return "True"
		}
		return "False"
	}
	if n.kind == kInt {
		if v, err := intValue(n.value); err == nil {
			return strconv.FormatInt(v, 10)
		}
	}
	return n.value
}

func (p *parser) packages(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kSeq {
		p.typeErr(n, "packages", "list")
		return
	}
	for i, it := range n.items {
		path := fmt.Sprintf("packages[%d]", i)
		switch it.kind {
		case kStr:
			p.cfg.Packages = append(p.cfg.Packages, config.Package{Origin: it.origin, Name: it.value})
		case kSeq:
			if len(it.items) == 0 || len(it.items) > 2 {
				p.errorf(it.origin, "%s: expected [name] or [name, version]", path)
				continue
			}
			name, ok := p.str(it.items[0], path+"[0]")
			if !ok {
				continue
			}
			pk := config.Package{Origin: it.origin, Name: name}
			if len(it.items) == 2 {
				if pk.Version, ok = p.str(it.items[1], path+"[1]"); !ok {
					continue
				}
			}
			p.cfg.Packages = append(p.cfg.Packages, pk)
		case kMap:
			p.warnf(it.origin, "%s: package-manager specific lists (apt:, snap:) are not supported", path)
		default:
			p.typeErr(it, path, "package name or [name, version]")
		}
	}
}

// repoOptions flattens a repository mapping to strings (booleans as 1/0,
// as zypper and yum repo files want).
func (p *parser) repoOptions(m *node, path string) map[string]string {
	opts := map[string]string{}
	for i, k := range m.keys {
		v := m.vals[i]
		switch v.kind {
		case kNull:
			continue
		case kBool:
			if v.value == "true" {
				opts[k.value] = "1"
			} else {
				opts[k.value] = "0"
			}
		case kSeq:
			var parts []string
			for j, it := range v.items {
				if s, ok := p.str(it, fmt.Sprintf("%s.%s[%d]", path, k.value, j)); ok {
					parts = append(parts, s)
				}
			}
			opts[k.value] = strings.Join(parts, "\n")
		default:
			if s, ok := p.str(v, path+"."+k.value); ok {
				opts[k.value] = s
			}
		}
	}
	return opts
}

func (p *parser) optBool(m *node, key, path string) *bool {
	v := m.get(key)
	if v == nil || v.kind == kNull {
		return nil
	}
	b, ok := p.boolean(v, path+"."+key)
	if !ok {
		return nil
	}
	return &b
}

func (p *parser) zypper(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "zypper", "mapping")
		return
	}
	for i, k := range n.keys {
		v := n.vals[i]
		switch k.value {
		case "repos":
			if v.kind == kNull {
				continue
			}
			if v.kind != kSeq {
				p.typeErr(v, "zypper.repos", "list")
				continue
			}
			for j, r := range v.items {
				path := fmt.Sprintf("zypper.repos[%d]", j)
				if r.kind != kMap {
					p.typeErr(r, path, "mapping")
					continue
				}
				idN, urlN := r.get("id"), r.get("baseurl")
				if idN == nil || urlN == nil {
					p.errorf(r.origin, "%s: id and baseurl are required", path)
					continue
				}
				id, ok1 := p.str(idN, path+".id")
				url, ok2 := p.str(urlN, path+".baseurl")
				if !ok1 || !ok2 {
					continue
				}
				repo := config.Repository{Origin: r.origin, Manager: "zypper", Name: id, BaseURL: url,
					Enabled: p.optBool(r, "enabled", path), GPGCheck: p.optBool(r, "gpgcheck", path),
					Options: p.repoOptions(r, path)}
				if g := r.get("gpgkey"); g != nil {
					repo.GPGKey = repo.Options["gpgkey"]
				}
				p.optBool(r, "autorefresh", path)
				p.cfg.Repositories = append(p.cfg.Repositories, repo)
			}
		case "config":
			p.warnf(k.origin, "zypper.config: not supported by provision; ignored")
		default:
			p.warnf(k.origin, "unknown zypper key %q", k.value)
		}
	}
}

func (p *parser) yumRepos(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "yum_repos", "mapping")
		return
	}
	for i, k := range n.keys {
		r := n.vals[i]
		path := "yum_repos." + k.value
		if r.kind != kMap {
			p.typeErr(r, path, "mapping")
			continue
		}
		opts := p.repoOptions(r, path)
		if opts["baseurl"] == "" && opts["metalink"] == "" && opts["mirrorlist"] == "" {
			p.errorf(r.origin, "%s: one of baseurl, metalink or mirrorlist is required", path)
			continue
		}
		// cloud-init canonicalizes the id (spaces and dots... to '-' only for
		// the file name); keep the id and let the renderer name the file.
		p.cfg.Repositories = append(p.cfg.Repositories, config.Repository{
			Origin: r.origin, Manager: "yum", Name: k.value, BaseURL: opts["baseurl"],
			Enabled: p.optBool(r, "enabled", path), GPGCheck: p.optBool(r, "gpgcheck", path),
			GPGKey: opts["gpgkey"], Options: opts,
		})
	}
}

func (p *parser) apt(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "apt", "mapping")
		return
	}
	for i, k := range n.keys {
		v := n.vals[i]
		if k.value == "preserve_sources_list" && v.kind == kBool && v.value == "true" {
			// Keeping sources.list is what provision does anyway (it
			// never renders cloud-init's template over it): no warning.
			continue
		}
		if k.value != "sources" {
			p.warnf(k.origin, "apt.%s: not supported by provision; ignored", k.value)
			continue
		}
		if v.kind == kNull {
			continue
		}
		if v.kind != kMap {
			p.typeErr(v, "apt.sources", "mapping")
			continue
		}
		for j, sk := range v.keys {
			s := v.vals[j]
			path := "apt.sources." + sk.value
			if s.kind != kMap {
				p.typeErr(s, path, "mapping")
				continue
			}
			opts := p.repoOptions(s, path)
			name := sk.value
			if f := opts["filename"]; f != "" {
				name = strings.TrimSuffix(f, ".list")
			}
			if opts["source"] == "" && opts["key"] == "" && opts["keyid"] == "" {
				p.errorf(s.origin, "%s: needs source, key or keyid", path)
				continue
			}
			p.cfg.Repositories = append(p.cfg.Repositories, config.Repository{
				Origin: s.origin, Manager: "apt", Name: name, BaseURL: opts["source"],
				GPGKey: opts["key"], Options: opts,
			})
		}
	}
}

// ---- system ----

// hostname follows util.get_hostname_fqdn: fqdn wins; a hostname with a
// dot is an fqdn; meta-data's local-hostname is the fallback.
func (p *parser) hostname(hn, fq, prefer *node) {
	sys := &p.cfg.System
	set := func(dst *config.Setting, v string, o config.Origin) {
		*dst = config.Setting{Value: v, Origin: o}
	}
	var hs, fs string
	if hn != nil && hn.kind != kNull {
		hs, _ = p.str(hn, "hostname")
	}
	if fq != nil && fq.kind != kNull {
		fs, _ = p.str(fq, "fqdn")
	}
	switch {
	case fs != "":
		set(&sys.FQDN, fs, fq.origin)
		if hs != "" {
			set(&sys.Hostname, hs, hn.origin)
		} else {
			set(&sys.Hostname, strings.SplitN(fs, ".", 2)[0], fq.origin)
		}
	case hs != "":
		if strings.Contains(hs, ".") {
			set(&sys.FQDN, hs, hn.origin)
			set(&sys.Hostname, strings.SplitN(hs, ".", 2)[0], hn.origin)
		} else {
			set(&sys.Hostname, hs, hn.origin)
		}
	case p.localHostname != nil:
		lh := p.localHostname
		if lh.value != "" {
			if strings.Contains(lh.value, ".") {
				set(&sys.FQDN, lh.value, lh.origin)
				set(&sys.Hostname, strings.SplitN(lh.value, ".", 2)[0], lh.origin)
			} else {
				set(&sys.Hostname, lh.value, lh.origin)
			}
		}
	}
	if prefer != nil && prefer.kind != kNull {
		// Only /etc/hostname gets the fqdn: the short name stays, as
		// cloud-init's /etc/hosts line "127.0.1.1 fqdn hostname" needs it.
		if b, ok := p.boolean(prefer, "prefer_fqdn_over_hostname"); ok {
			sys.PreferFQDN = &config.BoolSetting{Value: b, Origin: prefer.origin}
		}
	}
}

func (p *parser) manageEtcHosts(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	switch {
	case n.kind == kBool:
		if n.value == "true" {
			p.cfg.System.ManageEtcHosts = config.Setting{Value: "true", Origin: n.origin}
		}
	case n.kind == kStr && (n.value == "localhost" || n.value == "template"):
		p.cfg.System.ManageEtcHosts = config.Setting{Value: n.value, Origin: n.origin}
	default:
		p.typeErr(n, "manage_etc_hosts", `true, false, "localhost" or "template"`)
	}
}

func (p *parser) keyboard(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "keyboard", "mapping")
		return
	}
	kb := config.Keyboard{Origin: n.origin, Model: "pc105"} // cloud-init's default model
	for i, k := range n.keys {
		v := n.vals[i]
		var dst *string
		switch k.value {
		case "layout":
			dst = &kb.Layout
		case "model":
			dst = &kb.Model
		case "variant":
			dst = &kb.Variant
		case "options":
			dst = &kb.Options
		default:
			p.warnf(k.origin, "unknown keyboard key %q", k.value)
			continue
		}
		*dst, _ = p.str(v, "keyboard."+k.value)
	}
	if kb.Layout == "" {
		p.errorf(n.origin, "keyboard: layout is required")
		return
	}
	p.cfg.System.Keyboard = kb
}
