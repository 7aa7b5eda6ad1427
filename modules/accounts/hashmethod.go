package accounts

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules/rootfs"
)

// HashMethod is how the target's own tools would hash a new password:
// chpasswd (which cloud-init runs) hands plain text to PAM, whose pam_unix
// uses the method named on its "password" line, else login.defs'
// ENCRYPT_METHOD. Debian 12 is the case that needs both: its login.defs
// says SHA512, its common-password says yescrypt, and chpasswd writes $y$.
type HashMethod struct {
	// Name as login.defs spells it: SHA512, SHA256, YESCRYPT, BCRYPT, MD5,
	// DES, GOST-YESCRYPT...
	Name string
	// Rounds is SHA_CRYPT_MIN/MAX_ROUNDS (or pam_unix rounds=) for the SHA
	// methods, the cost factor for YESCRYPT and BCRYPT; 0 when unset.
	Rounds int
	// MaxRounds, when above Rounds, makes each hash pick its rounds in
	// [Rounds, MaxRounds], as shadow-utils does with both limits set.
	MaxRounds int
	// From names the file the method was read from, for messages.
	From string
}

// DefaultHashMethod is used when the target configures nothing: SHA-512,
// what every current distribution's tools write without yescrypt, rather
// than shadow-utils' compiled-in DES.
var DefaultHashMethod = HashMethod{Name: "SHA512", From: "default"}

// pamDirs are searched in Linux-PAM's order: the administrator's /etc/pam.d,
// then the vendor directories (openSUSE: /usr/lib/pam.d, older /usr/etc/pam.d).
var pamDirs = []string{"/etc/pam.d", "/usr/lib/pam.d", "/usr/etc/pam.d"}

// pamMethods maps pam_unix's hash options to login.defs names.
var pamMethods = map[string]string{
	"md5": "MD5", "bigcrypt": "DES", "sha256": "SHA256", "sha512": "SHA512",
	"blowfish": "BCRYPT", "yescrypt": "YESCRYPT", "gost_yescrypt": "GOST-YESCRYPT",
}

// ReadHashMethod finds the target's method: pam_unix's option in the
// chpasswd PAM stack, else login.defs (defs, already read), else the default.
func ReadHashMethod(root *rootfs.Root, defs *LoginDefs) (HashMethod, error) {
	m, err := pamHashMethod(root)
	if err != nil {
		return HashMethod{}, err
	}
	if m.Name == "" {
		m = loginDefsMethod(defs)
	}
	if m.Name == "" {
		return DefaultHashMethod, nil
	}
	// pam_unix without rounds= takes the cost from login.defs too.
	if m.Rounds == 0 && defs != nil {
		lm := loginDefsCost(defs, m.Name)
		m.Rounds, m.MaxRounds = lm.Rounds, lm.MaxRounds
	}
	return m, nil
}

// loginDefsMethod is shadow-utils' choice: ENCRYPT_METHOD, else
// MD5_CRYPT_ENAB; "" when neither is set.
func loginDefsMethod(defs *LoginDefs) HashMethod {
	if defs == nil {
		return HashMethod{}
	}
	from := defs.Path
	if from == "" {
		from = "login.defs"
	}
	if v, ok := defs.Str("ENCRYPT_METHOD"); ok && v != "" {
		return HashMethod{Name: strings.ToUpper(v), From: from}
	}
	if defs.Bool("MD5_CRYPT_ENAB") {
		return HashMethod{Name: "MD5", From: from}
	}
	return HashMethod{}
}

// loginDefsCost reads the cost keys of method the way shadow-utils' salt.c
// does: one limit alone is both; a minimum above the maximum wins.
func loginDefsCost(defs *LoginDefs, method string) HashMethod {
	switch method {
	case "SHA256", "SHA512":
		lo := defs.Num("SHA_CRYPT_MIN_ROUNDS", -1)
		hi := defs.Num("SHA_CRYPT_MAX_ROUNDS", -1)
		if lo == -1 && hi == -1 {
			return HashMethod{}
		}
		if lo == -1 {
			lo = hi
		}
		if hi == -1 || hi < lo {
			hi = lo
		}
		return HashMethod{Rounds: int(clamp(lo, 1000, 999999999)), MaxRounds: int(clamp(hi, 1000, 999999999))}
	case "YESCRYPT", "GOST-YESCRYPT":
		if c := defs.Num("YESCRYPT_COST_FACTOR", 0); c > 0 {
			return HashMethod{Rounds: int(clamp(c, 1, 11))}
		}
	case "BCRYPT":
		if c := defs.Num("BCRYPT_MIN_ROUNDS", 0); c > 0 {
			return HashMethod{Rounds: int(clamp(c, 4, 31))}
		}
	}
	return HashMethod{}
}

func clamp(n, lo, hi int64) int64 {
	return max(lo, min(n, hi))
}

// pamHashMethod reads the chpasswd service's password stack and returns
// pam_unix's hash option ("" Name when the stack has none, or no pam_unix,
// or the target has no PAM configuration for chpasswd).
func pamHashMethod(root *rootfs.Root) (HashMethod, error) {
	return pamService(root, "chpasswd", 0)
}

// pamService follows one service file and its includes (at most a few
// levels: a loop in a broken configuration must not hang the run).
func pamService(root *rootfs.Root, service string, depth int) (HashMethod, error) {
	if depth > 8 || service == "" || strings.Contains(service, "/") {
		return HashMethod{}, nil
	}
	data, file, err := readPAMFile(root, service)
	if err != nil || data == nil {
		return HashMethod{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := pamFields(line)
		switch {
		case len(f) >= 2 && f[0] == "@include":
			m, err := pamService(root, f[1], depth+1)
			if err != nil || m.Name != "" {
				return m, err
			}
		case len(f) >= 3 && strings.TrimPrefix(f[0], "-") == "password":
			if f[1] == "include" || f[1] == "substack" {
				m, err := pamService(root, f[2], depth+1)
				if err != nil || m.Name != "" {
					return m, err
				}
				continue
			}
			if path.Base(f[2]) == "pam_unix.so" {
				// The first pam_unix line hashes; without an option it
				// uses login.defs, which the caller reads.
				return pamUnixMethod(f[3:], file), nil
			}
		}
	}
	return HashMethod{}, nil
}

// pamUnixMethod reads pam_unix's options; later options win, as in
// pam_unix's own parser.
func pamUnixMethod(args []string, file string) HashMethod {
	var m HashMethod
	for _, a := range args {
		if name, ok := pamMethods[a]; ok {
			m.Name = name
			continue
		}
		if v, ok := strings.CutPrefix(a, "rounds="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				m.Rounds = n
			}
		}
	}
	if m.Name == "" {
		return HashMethod{}
	}
	if m.Rounds != 0 {
		switch m.Name {
		case "SHA256", "SHA512":
			m.Rounds = int(clamp(int64(m.Rounds), 1000, 999999999))
		case "YESCRYPT", "GOST-YESCRYPT":
			m.Rounds = int(clamp(int64(m.Rounds), 1, 11))
		}
	}
	m.From = file + " (pam_unix)"
	return m
}

// readPAMFile returns the first service file found in pamDirs; nil data
// when there is none.
func readPAMFile(root *rootfs.Root, service string) ([]byte, string, error) {
	for _, dir := range pamDirs {
		p := path.Join(dir, service)
		data, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("read %s: %w", p, err)
		}
		return data, p, nil
	}
	return nil, "", nil
}

// pamFields splits a PAM line into type, control, module and arguments; a
// bracketed control ("[success=1 default=ignore]") is one field. Comments
// and blank lines give nil.
func pamFields(line string) []string {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	var out []string
	for {
		line = strings.TrimLeft(line, " \t\r")
		if line == "" {
			return out
		}
		end := strings.IndexAny(line, " \t\r")
		if line[0] == '[' {
			if j := strings.IndexByte(line, ']'); j >= 0 {
				end = j + 1
			}
		}
		if end < 0 {
			end = len(line)
		}
		out = append(out, line[:end])
		line = line[end:]
	}
}
