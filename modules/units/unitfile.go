package units

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// installInfo is what systemctl reads from a unit's [Install] section
// (main file and drop-ins), before specifiers are expanded.
type installInfo struct {
	wantedBy, requiredBy, upheldBy, alias, also []string
	defaultInstance                             string
	found                                       bool // some [Install] key was set
	unknownDropin                               bool // a drop-in's contents are known only when applying
}

// parseInstall reads the [Install] section of a unit file into info,
// following systemd's config syntax: "[Section]" headers, "#" and ";"
// comments, a trailing backslash continuing the line, and for list settings
// an empty assignment resetting the list. Later files (drop-ins) add to or
// reset what earlier ones set, as systemd reads them.
func parseInstall(data []byte, file string, info *installInfo) error {
	lines := strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	section := ""
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			line = line[:len(line)-1] + " "
			i++
			next := strings.TrimSpace(lines[i])
			if next != "" && (next[0] == '#' || next[0] == ';') {
				continue // comments inside a continuation are skipped
			}
			line += next
		}
		if line[0] == '[' {
			if !strings.HasSuffix(line, "]") {
				return fmt.Errorf("%s:%d: invalid section header %q", file, lineNo, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		if section != "Install" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: missing '=' in %q", file, lineNo, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		var list *[]string
		switch key {
		case "WantedBy":
			list = &info.wantedBy
		case "RequiredBy":
			list = &info.requiredBy
		case "UpheldBy":
			list = &info.upheldBy
		case "Alias":
			list = &info.alias
		case "Also":
			list = &info.also
		case "DefaultInstance":
			info.defaultInstance = value
			info.found = true
			continue
		default:
			continue // systemctl ignores unknown [Install] keys too
		}
		info.found = true
		if value == "" {
			*list = nil
			continue
		}
		words, err := splitWords(value)
		if err != nil {
			return fmt.Errorf("%s:%d: %s=: %w", file, lineNo, key, err)
		}
		*list = append(*list, words...)
	}
	return nil
}

// splitWords splits a list value at whitespace, honouring "..." and '...'
// quoting as systemd's extract_first_word does for these settings.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quote in %q", s)
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// unitNameRE is systemd's unit_name_is_valid: a prefix of allowed
// characters, an optional @instance, and a known type suffix.
var unitNameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9:_.\\-]+)(@([A-Za-z0-9:_.\\-]*))?\.(service|socket|device|mount|automount|swap|target|path|timer|slice|scope)$`)
})

type unitName struct {
	full, prefix, instance, suffix string
	template                       bool // prefix@.suffix
	instanced                      bool // prefix@instance.suffix
}

func parseUnitName(s string) (unitName, bool) {
	if len(s) > 255 {
		return unitName{}, false
	}
	m := unitNameRE().FindStringSubmatch(s)
	if m == nil {
		return unitName{}, false
	}
	n := unitName{full: s, prefix: m[1], instance: m[3], suffix: "." + m[4]}
	if m[2] != "" {
		n.template = m[3] == ""
		n.instanced = m[3] != ""
	}
	return n, true
}

func (n unitName) templateName() string { return n.prefix + "@" + n.suffix }

func (n unitName) withInstance(inst string) string { return n.prefix + "@" + inst + n.suffix }

// expand resolves the specifiers systemctl expands in [Install] values
// (install_name_printf). Only those that depend on the unit name are
// supported: the others (%H, %m, %b, ...) would need facts of the booted
// target that do not exist yet when provisioning.
func expand(s string, n unitName) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("%q ends in a lone %%", s)
		}
		i++
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(n.full)
		case 'N':
			b.WriteString(strings.TrimSuffix(n.full, n.suffix))
		case 'p':
			b.WriteString(n.prefix)
		case 'P':
			b.WriteString(unescape(n.prefix))
		case 'i':
			b.WriteString(n.instance)
		case 'I':
			b.WriteString(unescape(n.instance))
		case 'j':
			b.WriteString(lastDash(n.prefix))
		case 'J':
			b.WriteString(unescape(lastDash(n.prefix)))
		default:
			return "", fmt.Errorf("specifier %%%c in %q is not supported when enabling offline", s[i], s)
		}
	}
	return b.String(), nil
}

func lastDash(prefix string) string {
	if i := strings.LastIndexByte(prefix, '-'); i >= 0 {
		return prefix[i+1:]
	}
	return prefix
}

// unescape is systemd's unit_name_unescape: "-" is "/", "\xNN" a byte.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '-':
			b.WriteByte('/')
		case s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x':
			var v byte
			if _, err := fmt.Sscanf(s[i+2:i+4], "%02x", &v); err == nil {
				b.WriteByte(v)
				i += 3
				continue
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// FileName is the unit file that defines the unit name: the name itself,
// or for an instance (foo@bar.service) its template (foo@.service). ok is
// false for a name systemd does not accept (unit_name_is_valid).
func FileName(name string) (file string, ok bool) {
	n, ok := parseUnitName(name)
	if !ok {
		return "", false
	}
	if n.instanced {
		return n.templateName(), true
	}
	return name, true
}
