package bootentry

import (
	"fmt"
	"strings"
)

// Entry is a Boot Loader Specification Type #1 entry ("loader/entries/*.conf").
// Every line is kept, in order: unknown keys, comments, blank lines, and
// repeated keys ("initrd", "options"). Lines that are not changed are written
// back byte for byte.
type Entry struct {
	lines []line
}

// ParseEntry parses an entry file. name is used in errors ("name:line: ...").
// A file larger than MaxFileSize, bytes that are not UTF-8 and control
// characters are errors.
func ParseEntry(name string, data []byte) (*Entry, error) {
	lines, err := parseLines(name, data)
	if err != nil {
		return nil, err
	}
	return &Entry{lines: lines}, nil
}

// Bytes renders the entry, one line per line, each ending in "\n".
func (e *Entry) Bytes() []byte { return writeLines(e.lines) }

// Clone returns an independent copy.
func (e *Entry) Clone() *Entry {
	return &Entry{lines: append([]line(nil), e.lines...)}
}

// Fields lists the key/value lines in order (comments and blanks left out).
func (e *Entry) Fields() []Field { return fields(e.lines) }

// Get returns the value of key; with several lines, the last one, which is
// the one systemd-boot uses for single-valued keys.
func (e *Entry) Get(key string) string {
	v, _ := get(e.lines, key)
	return v
}

// Values returns the values of every line with key, in order ("initrd").
func (e *Entry) Values(key string) []string { return values(e.lines, key) }

// Set gives key the value: the first line with key is rewritten (in the
// column layout sdbootutil uses), further lines with key are dropped, and a
// missing key is appended.
func (e *Entry) Set(key, value string) error {
	lines, err := set(e.lines, key, value, columnFormat)
	if err != nil {
		return err
	}
	e.lines = lines
	return nil
}

// Options returns the kernel command line: the values of all "options"
// lines joined by a space, as systemd-boot joins them.
func (e *Entry) Options() string {
	return strings.Join(values(e.lines, "options"), " ")
}

// cmdlineWords splits a kernel command line into words the way the kernel
// does: blanks separate words except inside double quotes. It returns the
// [start, end) offsets of each word.
func cmdlineWords(s string) [][2]int {
	var words [][2]int
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			break
		}
		start, quoted := i, false
		for i < len(s) && (quoted || (s[i] != ' ' && s[i] != '\t')) {
			if s[i] == '"' {
				quoted = !quoted
			}
			i++
		}
		words = append(words, [2]int{start, i})
	}
	return words
}

// rootParams returns the effective "root=" and "subvol=" (from the
// "rootflags=" words) of the command line. The last occurrence wins:
// systemd's fstab generator joins every rootflags= with ",", and for
// repeated mount options the last one counts.
func (e *Entry) rootParams() (root, subvol string, hasSubvol bool) {
	v := e.Options()
	for _, w := range cmdlineWords(v) {
		word := v[w[0]:w[1]]
		switch {
		case strings.HasPrefix(word, "root="):
			root = strings.TrimPrefix(word, "root=")
		case strings.HasPrefix(word, "rootflags="):
			for _, o := range strings.Split(strings.TrimPrefix(word, "rootflags="), ",") {
				if s, ok := strings.CutPrefix(o, "subvol="); ok {
					subvol, hasSubvol = s, true
				}
			}
		}
	}
	return root, subvol, hasSubvol
}

// setSubvol makes every "subvol=" of every "rootflags=" word name subvol and
// drops "subvolid=" (it would contradict the new path). With no subvol= at
// all, one is added to the last rootflags= word, or a "rootflags=subvol="
// word is appended to the last options line, as sdbootutil appends it.
func (e *Entry) setSubvol(subvol string) error {
	if subvol == "" || strings.ContainsAny(subvol, " \t\",") {
		return fmt.Errorf("subvolume %q cannot be put on a kernel command line", subvol)
	}
	for _, l := range e.lines {
		if l.key == "options" && strings.Count(l.value, `"`)%2 != 0 {
			return fmt.Errorf("options %s: unbalanced double quote", l.value)
		}
	}
	found := false
	e.editFlags(func(opts []string) []string {
		var out []string
		for _, o := range opts {
			switch {
			case strings.HasPrefix(o, "subvol="):
				found = true
				o = "subvol=" + subvol
			case strings.HasPrefix(o, "subvolid="):
				continue
			}
			out = append(out, o)
		}
		return out
	})
	if found {
		return nil
	}
	// No subvol= anywhere: extend the last rootflags= word, if there is one.
	last, at := -1, 0
	for i, l := range e.lines {
		if l.key != "options" {
			continue
		}
		n := 0
		for _, w := range cmdlineWords(l.value) {
			if strings.HasPrefix(l.value[w[0]:w[1]], "rootflags=") {
				last, at = i, n
				n++
			}
		}
	}
	if last >= 0 {
		n := 0
		e.editLine(last, func(opts []string) []string {
			n++
			if n-1 != at {
				return opts
			}
			if len(opts) == 1 && opts[0] == "" {
				opts = nil
			}
			return append(opts, "subvol="+subvol)
		})
		return nil
	}
	add := "rootflags=subvol=" + subvol
	lastOpt := -1
	for i, l := range e.lines {
		if l.key == "options" {
			lastOpt = i
		}
	}
	if lastOpt < 0 {
		return e.Set("options", add)
	}
	nv := e.lines[lastOpt].value
	if nv != "" {
		nv += " "
	}
	e.replaceOptions(lastOpt, nv+add)
	return nil
}

// editFlags rewrites the comma-separated options of every rootflags= word.
func (e *Entry) editFlags(f func(opts []string) []string) {
	for i, l := range e.lines {
		if l.key == "options" {
			e.editLine(i, f)
		}
	}
}

// editLine rewrites the rootflags= words of one options line, in order;
// the rest of the line is kept as it is.
func (e *Entry) editLine(i int, f func(opts []string) []string) {
	v := e.lines[i].value
	var b strings.Builder
	prev := 0
	for _, w := range cmdlineWords(v) {
		word := v[w[0]:w[1]]
		flags, ok := strings.CutPrefix(word, "rootflags=")
		if !ok {
			continue
		}
		nw := "rootflags=" + strings.Join(f(strings.Split(flags, ",")), ",")
		b.WriteString(v[prev:w[0]])
		b.WriteString(nw)
		prev = w[1]
	}
	b.WriteString(v[prev:])
	if nv := b.String(); nv != v {
		e.replaceOptions(i, nv)
	}
}

func (e *Entry) replaceOptions(i int, value string) {
	e.lines[i] = line{key: "options", value: value, raw: columnFormat("options", value)}
}
