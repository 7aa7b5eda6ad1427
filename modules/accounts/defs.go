package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules/rootfs"
)

// LoginDefs is the target's login.defs: "KEY value" lines, "#" comments.
type LoginDefs struct {
	Path   string // the file read, "" when none exists
	values map[string]string
}

// ReadLoginDefs reads /etc/login.defs, or /usr/etc/login.defs on
// hermetic-usr systems (openSUSE MicroOS) where /etc has no copy. A target
// with neither gets shadow-utils' compiled-in defaults.
func ReadLoginDefs(root *rootfs.Root) (*LoginDefs, error) {
	for _, p := range []string{"/etc/login.defs", "/usr/etc/login.defs"} {
		data, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		d := ParseLoginDefs(data)
		d.Path = p
		return d, nil
	}
	return ParseLoginDefs(nil), nil
}

// ParseLoginDefs parses login.defs text the way getdef.c does: the first
// word is the key, the rest of the line (trimmed, surrounding double quotes
// removed) the value; later lines override earlier ones.
func ParseLoginDefs(data []byte) *LoginDefs {
	d := &LoginDefs{values: map[string]string{}}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.IndexAny(line, " \t")
		if i < 0 {
			continue
		}
		key, val := line[:i], strings.TrimSpace(line[i:])
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		d.values[key] = val
	}
	return d
}

// Str returns a string setting ("" when unset).
func (d *LoginDefs) Str(key string) (string, bool) {
	v, ok := d.values[key]
	return v, ok
}

// Num returns a numeric setting, or def when unset or not a number. Numbers
// are read like strtol base 0 (getdef_num): "022" is octal, "0x1F" hex.
func (d *LoginDefs) Num(key string, def int64) int64 {
	v, ok := d.values[key]
	if !ok {
		return def
	}
	n, ok := parseCNumber(v)
	if !ok {
		return def
	}
	return n
}

// Bool is getdef_bool: true only for "yes" (any case).
func (d *LoginDefs) Bool(key string) bool {
	return strings.EqualFold(d.values[key], "yes")
}

// parseCNumber parses like strtol(s, &end, 0) with the whole string consumed.
func parseCNumber(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsRune(s, '_') {
		return 0, false
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	n, err := strconv.ParseInt(s, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// UseraddDefaults are the /etc/default/useradd settings useradd applies to
// every new account.
type UseraddDefaults struct {
	Group           string // GROUP: name or gid of -N users' primary group
	Home            string // HOME: base directory of homes
	Shell           string // SHELL
	Skel            string // SKEL
	Inactive        int    // INACTIVE (-1 = none)
	Expire          string // EXPIRE (YYYY-MM-DD or "")
	CreateMailSpool bool   // CREATE_MAIL_SPOOL
}

// ReadUseraddDefaults reads /etc/default/useradd (falling back to
// /usr/etc/default/useradd). Unset keys keep Debian's compiled-in defaults,
// which `useradd -D` prints on a target without the file: GROUP=100,
// HOME=/home, INACTIVE=-1, SHELL=/bin/sh, SKEL=/etc/skel, no mail spool.
func ReadUseraddDefaults(root *rootfs.Root) (UseraddDefaults, error) {
	d := UseraddDefaults{Group: "100", Home: "/home", Shell: "/bin/sh", Skel: "/etc/skel", Inactive: -1}
	for _, p := range []string{"/etc/default/useradd", "/usr/etc/default/useradd"} {
		data, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return d, fmt.Errorf("read %s: %w", p, err)
		}
		d.parse(data)
		break
	}
	return d, nil
}

func (d *UseraddDefaults) parse(data []byte) {
	for _, line := range strings.Split(string(data), "\n") {
		key, val, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		switch key {
		case "GROUP":
			d.Group = val
		case "HOME":
			d.Home = val
		case "SHELL":
			d.Shell = val
		case "SKEL":
			d.Skel = val
		case "INACTIVE":
			if n, err := strconv.Atoi(val); err == nil && n >= -1 {
				d.Inactive = n
			}
		case "EXPIRE":
			d.Expire = val
		case "CREATE_MAIL_SPOOL":
			d.CreateMailSpool = strings.EqualFold(val, "yes")
		}
	}
}
