package rootfs

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable escapes what would let a string taken from a config or a
// target (a path, a name, an origin) break or fake a line of the console,
// the journal or the report text: control characters (newline, carriage
// return, terminal escape sequences), invalid UTF-8 and the bidirectional
// overrides, in Go's quoted-string notation (\n, \x1b, \u202e). Other text
// is returned unchanged, so ordinary paths print as they are.
func Printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case escapeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// PrintableLines is Printable for a message that may rightly span lines
// (errors joined with errors.Join): each line is escaped and every line
// after the first is indented, so none can pass for a status line.
func PrintableLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Printable(l)
	}
	return strings.Join(lines, "\n    ")
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n == 1) || escapeRune(r) {
			return true
		}
		i += n
	}
	return false
}

func escapeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029'
}
