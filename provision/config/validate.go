package config

import (
	"errors"
	"fmt"
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"
)

// Error is a validation error tied to the item that caused it.
type Error struct {
	Origin  Origin
	Message string
}

func (e *Error) Error() string { return e.Origin.String() + ": " + e.Message }

// userNameChars is the character rule of shadow-utils' is_valid_user_name
// (lib/chkname.c, useradd without --badname, since shadow 4.9): a letter of
// either case, digit, '_' or '.' first, then those or '-', and a trailing '$'
// for Samba machine accounts. ValidName adds the rest of that rule. By hand,
// not a regular expression: compiling one costs a run more than all the
// names it checks.
func userNameChars(s string) bool {
	s = strings.TrimSuffix(s, "$")
	if s == "" || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// maxNameLen is shadow's USER_NAME_MAX_LENGTH (utmp's ut_user) that
// useradd of shadow 4.13 enforces; later releases allow up to
// LOGIN_NAME_MAX, so a longer name would work on some targets only.
const maxNameLen = 32

// hostnameLabel reports whether s is one RFC 1123 label: 1 to 63 letters,
// digits and '-', neither first nor last a '-'.
func hostnameLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// unitNameRE accepts what systemd calls a valid unit name with a known suffix.
var unitNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$`)
})

// ValidName reports whether s is acceptable as a user or group name, by
// upstream shadow-utils' rule: userNameChars, at most maxNameLen bytes, not
// all digits (it would read as a UID), not "." or "..". Debian patches its
// useradd to accept more (any name without ':', ',', white space or a
// leading '-', '+', '~'); those names are refused here, as MicroOS's and
// Fedora's useradd refuse them, and "..", "a/b" would make odd homes.
func ValidName(s string) bool {
	if len(s) > maxNameLen || s == "." || s == ".." || !userNameChars(s) {
		return false
	}
	return strings.Trim(s, "0123456789") != ""
}

// ValidHostname reports whether s is a valid host name or FQDN.
func ValidHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !hostnameLabel(label) {
			return false
		}
	}
	return true
}

// CheckPath verifies that p is an absolute, clean path inside the target. It
// refuses ".." components rather than cleaning them away: a config that says
// "/etc/../../x" is a mistake or an attack, and either way must not be guessed at.
func CheckPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return errors.New("path contains a NUL byte")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is not absolute", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("path %q contains \"..\"", p)
		}
	}
	if path.Clean(p) == "/" {
		return fmt.Errorf("path %q names the root directory", p)
	}
	return nil
}

// Validate checks the whole configuration before anything is written. It
// returns every problem found, joined, each naming its origin.
func (c *Config) Validate() error {
	var errs []error
	add := func(o Origin, format string, args ...any) {
		errs = append(errs, &Error{Origin: o, Message: fmt.Sprintf(format, args...)})
	}

	groups := map[string]*Group{}
	for i := range c.Groups {
		g := &c.Groups[i]
		if !ValidName(g.Name) {
			add(g.Origin, "invalid group name %q", g.Name)
		}
		if g.GID != nil && (*g.GID < 0 || *g.GID > 0xfffffffe) {
			add(g.Origin, "group %q: gid %d out of range", g.Name, *g.GID)
		}
		for _, m := range g.Members {
			if !ValidName(m) {
				add(g.Origin, "group %q: invalid member name %q", g.Name, m)
			}
		}
		if prev, ok := groups[g.Name]; ok && !sameExceptOrigin(prev, g) {
			add(g.Origin, "group %q defined differently at %s", g.Name, prev.Origin)
		}
		groups[g.Name] = g
	}

	users := map[string]*User{}
	for i := range c.Users {
		u := &c.Users[i]
		if !ValidName(u.Name) {
			add(u.Origin, "invalid user name %q", u.Name)
		}
		if u.UID != nil && (*u.UID < 0 || *u.UID > 0xfffffffe) {
			add(u.Origin, "user %q: uid %d out of range", u.Name, *u.UID)
		}
		for _, g := range u.Groups {
			if !ValidName(g) {
				add(u.Origin, "user %q: invalid group name %q", u.Name, g)
			}
		}
		if u.PrimaryGroup != "" && !ValidName(u.PrimaryGroup) && !isNumber(u.PrimaryGroup) {
			add(u.Origin, "user %q: invalid primary group %q", u.Name, u.PrimaryGroup)
		}
		if u.HomeDir != "" {
			if err := CheckPath(u.HomeDir); err != nil {
				add(u.Origin, "user %q: homedir: %v", u.Name, err)
			}
		}
		if strings.ContainsAny(u.Gecos, ":\n") {
			add(u.Origin, "user %q: gecos must not contain ':' or a newline", u.Name)
		}
		if strings.ContainsAny(u.Shell, ":\n") || strings.ContainsAny(u.HomeDir, ":\n") {
			add(u.Origin, "user %q: shell and homedir must not contain ':' or a newline", u.Name)
		}
		if strings.ContainsAny(u.Password.Value, ":\n") && u.Password.Kind == PasswordHash {
			add(u.Origin, "user %q: password hash must not contain ':' or a newline", u.Name)
		}
		for _, rule := range u.Sudo {
			if strings.ContainsRune(rule, '\n') {
				add(u.Origin, "user %q: sudo rule must be one line", u.Name)
			}
		}
		if prev, ok := users[u.Name]; ok && !sameExceptOrigin(prev, u) {
			add(u.Origin, "user %q defined differently at %s", u.Name, prev.Origin)
		}
		users[u.Name] = u
	}

	for _, p := range c.Passwords {
		if !ValidName(p.User) {
			add(p.Origin, "chpasswd: invalid user name %q", p.User)
		}
		if p.Password.Kind == PasswordHash && strings.ContainsAny(p.Password.Value, ":\n") {
			add(p.Origin, "chpasswd: password hash for %q must not contain ':' or a newline", p.User)
		}
	}

	for _, k := range c.SSHKeys {
		if !ValidName(k.User) {
			add(k.Origin, "ssh key for invalid user name %q", k.User)
		}
		if strings.ContainsAny(k.Key, "\r\n") {
			add(k.Origin, "ssh key must be a single line")
		}
	}

	type pathDef struct {
		origin Origin
		kind   string
		item   any
	}
	paths := map[string]pathDef{}
	claim := func(o Origin, p, kind string, item any, appendOnly bool) {
		if appendOnly {
			return
		}
		clean := path.Clean(p)
		if prev, ok := paths[clean]; ok {
			if prev.kind != kind || !sameExceptOrigin(prev.item, item) {
				add(o, "%s %s conflicts with the %s defined at %s", kind, p, prev.kind, prev.origin)
			}
			return
		}
		paths[clean] = pathDef{o, kind, item}
	}
	for i := range c.Files {
		f := &c.Files[i]
		if err := CheckPath(f.Path); err != nil {
			add(f.Origin, "file: %v", err)
			continue
		}
		if f.Mode != nil && *f.Mode&^0o7777 != 0 {
			add(f.Origin, "file %s: invalid mode %#o", f.Path, uint32(*f.Mode))
		}
		if f.Contents == nil && f.Source == "" && f.Append {
			add(f.Origin, "file %s: append without content", f.Path)
		}
		claim(f.Origin, f.Path, "file", f, f.Append)
	}
	for i := range c.Directories {
		d := &c.Directories[i]
		if err := CheckPath(d.Path); err != nil {
			add(d.Origin, "directory: %v", err)
			continue
		}
		if d.Mode != nil && *d.Mode&^0o7777 != 0 {
			add(d.Origin, "directory %s: invalid mode %#o", d.Path, uint32(*d.Mode))
		}
		claim(d.Origin, d.Path, "directory", d, false)
	}
	for i := range c.Links {
		l := &c.Links[i]
		if err := CheckPath(l.Path); err != nil {
			add(l.Origin, "link: %v", err)
			continue
		}
		if l.Target == "" {
			add(l.Origin, "link %s: empty target", l.Path)
		}
		if l.Hard {
			if err := CheckPath(l.Target); err != nil {
				add(l.Origin, "hard link %s: target: %v", l.Path, err)
			}
		}
		claim(l.Origin, l.Path, "link", l, false)
	}

	s := &c.System
	if s.Hostname.IsSet() && !ValidHostname(s.Hostname.Value) {
		add(s.Hostname.Origin, "invalid hostname %q", s.Hostname.Value)
	}
	if s.FQDN.IsSet() && !ValidHostname(s.FQDN.Value) {
		add(s.FQDN.Origin, "invalid fqdn %q", s.FQDN.Value)
	}
	if s.Timezone.IsSet() {
		if err := CheckTimezoneName(s.Timezone.Value); err != nil {
			add(s.Timezone.Origin, "%v", err)
		}
	}
	if s.Locale.IsSet() && strings.ContainsAny(s.Locale.Value, " \n\"'$`\\") {
		add(s.Locale.Origin, "invalid locale %q", s.Locale.Value)
	}
	if k := s.Keyboard; k.IsSet() {
		for _, v := range []string{k.Layout, k.Model, k.Variant, k.Options} {
			if strings.ContainsAny(v, " \n\"'$`\\") {
				add(k.Origin, "invalid keyboard setting %q", v)
			}
		}
	}

	units := map[string]*Unit{}
	for i := range c.Units {
		u := &c.Units[i]
		if !unitNameRE().MatchString(u.Name) {
			add(u.Origin, "invalid unit name %q", u.Name)
		}
		for _, d := range u.Dropins {
			if !strings.HasSuffix(d.Name, ".conf") || strings.Contains(d.Name, "/") {
				add(u.Origin, "unit %s: invalid drop-in name %q", u.Name, d.Name)
			}
		}
		if prev, ok := units[u.Name]; ok && !sameExceptOrigin(prev, u) {
			add(u.Origin, "unit %s defined differently at %s", u.Name, prev.Origin)
		}
		units[u.Name] = u
	}

	for _, p := range c.Packages {
		if p.Name == "" || strings.ContainsAny(p.Name, " \n\t;|&$`'\"") || strings.HasPrefix(p.Name, "-") {
			add(p.Origin, "invalid package name %q", p.Name)
		}
	}
	for _, r := range c.Repositories {
		if r.Name == "" || strings.ContainsAny(r.Name, "/\n") {
			add(r.Origin, "invalid repository name %q", r.Name)
		}
	}
	return errors.Join(errs...)
}

// CheckTimezoneName rejects names that cannot be a zoneinfo path; whether the
// zone exists is checked against the target's zoneinfo when applying.
func CheckTimezoneName(tz string) error {
	if tz == "" || strings.HasPrefix(tz, "/") || strings.ContainsAny(tz, " \n\x00") {
		return fmt.Errorf("invalid timezone %q", tz)
	}
	for _, c := range strings.Split(tz, "/") {
		if c == ".." || c == "." || c == "" {
			return fmt.Errorf("invalid timezone %q", tz)
		}
	}
	return nil
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// sameExceptOrigin compares two items of the same type ignoring their Origin
// field, so one definition repeated verbatim in two documents is not a conflict.
func sameExceptOrigin(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Kind() == reflect.Pointer {
		va = va.Elem()
	}
	if vb.Kind() == reflect.Pointer {
		vb = vb.Elem()
	}
	if va.Type() != vb.Type() {
		return false
	}
	ca := reflect.New(va.Type()).Elem()
	ca.Set(va)
	cb := reflect.New(vb.Type()).Elem()
	cb.Set(vb)
	if f := ca.FieldByName("Origin"); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
		cb.FieldByName("Origin").Set(reflect.Zero(f.Type()))
	}
	return reflect.DeepEqual(ca.Interface(), cb.Interface())
}
