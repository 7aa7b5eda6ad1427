// Package fstab parses fstab(5) as mount(8) and systemd read it: the one
// reader of the target's mount table for the chroot, the transaction and
// the /etc model.
package fstab

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Entry is one line of fstab(5).
type Entry struct {
	Line    int    // 1-based line number in the file
	Spec    string // UUID=..., LABEL=..., /dev/..., tmpfs, ...
	File    string // the mount point
	VfsType string // "auto" when the field is absent
	Options []string
	Freq    int
	Passno  int
}

// HasOption reports whether the entry carries option name (exact match, or
// "name=..." when name ends in "=").
func (e Entry) HasOption(name string) bool {
	_, ok := e.Option(name)
	return ok
}

// Option returns the value of "name=value" (or "" for a bare "name") and
// whether it is present; the last occurrence wins, as in mount(8).
func (e Entry) Option(name string) (string, bool) {
	val, found := "", false
	for _, o := range e.Options {
		k, v, hasVal := strings.Cut(o, "=")
		if k != name {
			continue
		}
		found = true
		if hasVal {
			val = v
		} else {
			val = ""
		}
	}
	return val, found
}

// maxFstab bounds what is parsed: a real fstab is a few hundred bytes.
const maxFstab = 1 << 20

// Parse parses fstab(5) text. Blank lines and lines starting with '#'
// are skipped; fields are separated by blanks; "\040"-style octal escapes
// in the first two fields are decoded (libmount does so for spaces and tabs).
// Missing trailing fields get mount(8)'s defaults (type auto, options
// defaults, 0, 0). A line with a single field, or a non-numeric freq or
// passno, is an error naming the line. name is used in error messages.
func Parse(name string, data []byte) ([]Entry, error) {
	if len(data) > maxFstab {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFstab)
	}
	var entries []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxFstab+1)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%s:%d: expected at least a device and a mount point", name, line)
		}
		e := Entry{
			Line:    line,
			Spec:    UnescapeOctal(fields[0]),
			File:    UnescapeOctal(fields[1]),
			VfsType: "auto",
			Options: []string{"defaults"},
		}
		if len(fields) > 2 {
			e.VfsType = fields[2]
		}
		if len(fields) > 3 {
			e.Options = splitOptions(fields[3])
		}
		for i, dst := range []*int{&e.Freq, &e.Passno} {
			if len(fields) <= 4+i {
				break
			}
			n, err := strconv.Atoi(fields[4+i])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s:%d: field %d: %q is not a number", name, line, 5+i, fields[4+i])
			}
			*dst = n
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	return entries, nil
}

func splitOptions(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o != "" {
			out = append(out, o)
		}
	}
	return out
}

// UnescapeOctal decodes \NNN octal escapes (fstab and mountinfo use them for
// blanks and backslashes); anything else is kept as written.
func UnescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')*64 + (s[i+2]-'0')*8 + (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
