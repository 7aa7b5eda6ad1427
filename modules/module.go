// Package modules holds what every applier shares: a Step is one planned
// operation on the target root, printed by --dry-run and applied by run.
// The appliers live in the subpackages (users, ssh, files, system, ...).
package modules

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Step is one operation. Plans are lists of steps in apply order.
type Step struct {
	Module string        `json:"module"` // "users", "files", ...
	Action string        `json:"action"` // "create user", "write", "set hostname"
	Target string        `json:"target"` // user name, path, unit name
	Detail string        `json:"detail,omitempty"`
	Origin config.Origin `json:"-"`
	// Apply performs the step. It is idempotent and confined to env.Root.
	Apply func(ctx context.Context, env *Env) error `json:"-"`
}

// String is the plan line: "users: create user alice (uid 1000) [nocloud:user-data:3:5]".
// Its parts come from the config (paths, names, origins), so they are
// escaped: a newline in a path must not start a line of its own.
func (s Step) String() string {
	line := fmt.Sprintf("%s: %s %s", Printable(s.Module), Printable(s.Action), Printable(s.Target))
	if s.Detail != "" {
		line += " (" + Printable(s.Detail) + ")"
	}
	return line + " [" + Printable(s.Origin.String()) + "]"
}

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

// Env is what a step applies against. External effects sit behind it so unit
// tests run unprivileged.
type Env struct {
	Root *rootfs.Root
	// Console receives human-readable progress and command output lines.
	Console io.Writer
	// Exec runs a command inside the target (chroot) when the engine provides
	// one; nil in dry runs and unit tests of modules that never execute.
	Exec Executor
	// Secret, when set, registers a value made during the run (a random
	// password) that the console may show once but reports must mask.
	Secret func(value string)
}

// ErrNoExecutor is wrapped by a step that must run a program in the
// target when Env has no Exec (a dry run).
var ErrNoExecutor = errors.New("no executor for the target (dry run?)")

// Executor runs a program inside the target root.
type Executor interface {
	Run(ctx context.Context, cmd Command) (exitCode int, err error)
}

// Command is a program run in the target. Output lines are streamed to Output.
type Command struct {
	Argv   []string
	Dir    string // inside the target
	Env    []string
	Stdin  io.Reader
	Output io.Writer
}
