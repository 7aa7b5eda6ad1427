package bootentry

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxFileSize bounds every ESP file this package parses (entries,
// loader.conf, grubenv): real ones are a few hundred bytes.
const MaxFileSize = 64 << 10

// Field is one "key value" line of an entry or of loader.conf.
type Field struct {
	Key   string
	Value string
}

// line is one line of a key/value file. Comments and blank lines have an
// empty key. raw is what is written back, so lines nobody changed keep their
// exact bytes.
type line struct {
	key   string
	value string
	raw   string
}

// parseLines splits a BLS-style "key value" file: a key is the first word,
// the value the rest of the line with surrounding blanks removed (the way
// systemd-boot reads entries and loader.conf). Lines starting with '#' and
// blank lines are kept as they are. Errors name the file and the line.
func parseLines(name string, data []byte) ([]line, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxFileSize)
	}
	if len(data) == 0 {
		return nil, nil
	}
	text := strings.TrimSuffix(string(data), "\n")
	var lines []line
	for i, s := range strings.Split(text, "\n") {
		s = strings.TrimSuffix(s, "\r")
		if err := checkText(s); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, i+1, err)
		}
		t := strings.TrimLeft(s, " \t")
		if t == "" || t[0] == '#' {
			lines = append(lines, line{raw: s})
			continue
		}
		key, rest := t, ""
		if k := strings.IndexAny(t, " \t"); k >= 0 {
			key, rest = t[:k], t[k+1:]
		}
		lines = append(lines, line{key: key, value: strings.Trim(rest, " \t"), raw: s})
	}
	return lines, nil
}

// checkText refuses what no entry or loader.conf contains: bytes that are
// not UTF-8 and control characters other than tab.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r == 0 {
			return fmt.Errorf("NUL byte")
		}
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

func writeLines(lines []line) []byte {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

func checkKeyValue(key, value string) error {
	if key == "" || strings.ContainsAny(key, " \t") || key[0] == '#' {
		return fmt.Errorf("invalid key %q", key)
	}
	if err := checkText(key); err != nil {
		return fmt.Errorf("key %q: %v", key, err)
	}
	if err := checkText(value); err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	return nil
}

// formatter renders a changed or added line.
type formatter func(key, value string) string

// columnFormat lines values up in the column sdbootutil uses for the entries
// it writes ("title      ...", "sort-key   ...", "machine-id ...").
func columnFormat(key, value string) string {
	if value == "" {
		return key
	}
	return fmt.Sprintf("%-10s %s", key, value)
}

// spaceFormat is "key value", as sdbootutil writes loader.conf settings.
func spaceFormat(key, value string) string {
	if value == "" {
		return key
	}
	return key + " " + value
}

// get returns the value of the last line with key (the one systemd-boot uses).
func get(lines []line, key string) (string, bool) {
	v, ok := "", false
	for _, l := range lines {
		if l.key == key {
			v, ok = l.value, true
		}
	}
	return v, ok
}

func values(lines []line, key string) []string {
	var vs []string
	for _, l := range lines {
		if l.key == key {
			vs = append(vs, l.value)
		}
	}
	return vs
}

// set gives the first line with key the new value and drops the other lines
// with that key; a missing key is appended.
func set(lines []line, key, value string, f formatter) ([]line, error) {
	value = strings.Trim(value, " \t")
	if err := checkKeyValue(key, value); err != nil {
		return lines, err
	}
	out := lines[:0:0]
	done := false
	for _, l := range lines {
		if l.key != key {
			out = append(out, l)
			continue
		}
		if done {
			continue
		}
		done = true
		if l.value != value {
			l = line{key: key, value: value, raw: f(key, value)}
		}
		out = append(out, l)
	}
	if !done {
		out = append(out, line{key: key, value: value, raw: f(key, value)})
	}
	return out, nil
}

func remove(lines []line, key string) []line {
	out := lines[:0:0]
	for _, l := range lines {
		if l.key != key {
			out = append(out, l)
		}
	}
	return out
}

func fields(lines []line) []Field {
	var fs []Field
	for _, l := range lines {
		if l.key != "" {
			fs = append(fs, Field{l.key, l.value})
		}
	}
	return fs
}
