package packages

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
)

type op int

const (
	opRefresh op = iota
	opUpgrade
	opInstall
)

func (o op) String() string {
	return [...]string{"refresh", "upgrade", "install"}[o]
}

// ZyppLockTimeout is how long zypper waits for another zypper's lock
// (/run/zypp.pid) before it gives up with status 7; zypper's default is
// not to wait at all.
const ZyppLockTimeout = "120"

// aptDpkgOptions keep the image's configuration files when a package
// ships a new version, without asking.
var aptDpkgOptions = []string{"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}

// argv returns the command line for an operation; pkgs are already in the
// manager's name+version syntax. upgradeVerb is zypper's "update" or "dup".
func argv(m *Manager, o op, pkgs []string, upgradeVerb string) []string {
	bin := m.Binary
	if bin == "" {
		bin = m.Label
	}
	var a []string
	switch m.Family {
	case Zypper:
		a = []string{bin, "--non-interactive", "--gpg-auto-import-keys"}
		switch o {
		case opRefresh:
			a = append(a, "refresh")
		case opUpgrade:
			a = append(a, upgradeVerb, "--auto-agree-with-licenses")
		case opInstall:
			a = append(a, "install", "--auto-agree-with-licenses", "--no-recommends")
		}
	case DNF:
		a = []string{bin, "-y"}
		switch o {
		case opRefresh:
			a = append(a, "makecache")
		case opUpgrade:
			a = append(a, "upgrade")
		case opInstall:
			a = append(a, "install")
		}
	case Apt:
		a = []string{bin}
		switch o {
		case opRefresh:
			a = append(a, "update")
		case opUpgrade:
			a = append(append(append(a, "-y"), aptDpkgOptions...), "dist-upgrade")
		case opInstall:
			a = append(append(append(a, "-y"), aptDpkgOptions...), "install")
		}
	default: // unknown manager (bare tree): a readable placeholder
		a = []string{bin, o.String()}
	}
	return append(a, pkgs...)
}

// commandEnv is the environment each manager needs to never ask.
func commandEnv(f Family) []string {
	env := []string{"LC_ALL=C"}
	switch f {
	case Zypper:
		// The snapper zypp plugin would take pre/post snapshots of the
		// running root around every commit; inside a snapshot
		// transaction that is wrong, and transactional-update switches
		// it off the same way.
		env = append(env, "ZYPP_LOCK_TIMEOUT="+ZyppLockTimeout, "DISABLE_SNAPPER_ZYPP_PLUGIN=1")
	case Apt:
		env = append(env, aptEnv()...)
	}
	return env
}

func aptEnv() []string {
	return []string{"DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true", "APT_LISTCHANGES_FRONTEND=none"}
}

// PackageArg is a package as the manager's command line wants it: zypper
// and apt take name=version, dnf name-version.
func PackageArg(f Family, p config.Package) string {
	if p.Version == "" {
		return p.Name
	}
	if f == DNF {
		return p.Name + "-" + p.Version
	}
	return p.Name + "=" + p.Version
}

// zypperUpgradeVerb: transactional-update's "up" runs `zypper dup` on the
// rolling distributions and `zypper update` elsewhere; so do we.
func zypperUpgradeVerb(osRelease map[string]string) string {
	switch osRelease["ID"] {
	case "opensuse-tumbleweed", "opensuse-microos", "opensuse-slowroll", "opensuse-aeon", "opensuse-kalpa":
		return "dup"
	}
	return "update"
}

func commandStep(m *Manager, t *target, o op, pkgs []config.Package, origin config.Origin, why string, deferred error) modules.Step {
	args := make([]string, len(pkgs))
	for i, p := range pkgs {
		args[i] = PackageArg(m.Family, p)
	}
	a := argv(m, o, args, zypperUpgradeVerb(t.osRelease))
	detail := strings.Join(a, " ")
	if why != "" {
		detail += "; " + why
	}
	st := modules.Step{Module: Module, Action: o.String(), Detail: detail, Origin: origin}
	switch o {
	case opRefresh:
		st.Target = "repositories"
	case opUpgrade:
		st.Target = "all packages"
	case opInstall:
		st.Target = strings.Join(args, " ")
	}
	inv := invocation{argv: a, env: commandEnv(m.Family), what: m.Label + " " + o.String(), origin: origin, op: o}
	for i, p := range pkgs {
		inv.pkgs = append(inv.pkgs, requested{name: p.Name, arg: args[i], origin: p.Origin})
	}
	tl := tool{label: m.Label, family: m.Family}
	st.Apply = func(ctx context.Context, env *modules.Env) error {
		if deferred != nil {
			return deferred
		}
		return runTool(ctx, env, tl, inv)
	}
	return st
}

type tool struct {
	label  string // console prefix word
	family Family
}

type requested struct {
	name, arg string
	origin    config.Origin
}

type invocation struct {
	argv   []string
	env    []string
	what   string // "zypper install"
	origin config.Origin
	op     op
	pkgs   []requested
}

// Error is a package manager run that failed.
type Error struct {
	Origin  config.Origin
	Command string // "zypper install"
	Code    int
	// Reason says what the exit status (or, for dnf's status 0, the
	// output) means.
	Reason string
	// Message is the manager's own line about the failure, when one was
	// recognised ("No provider of 'foo' found.").
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s failed", e.Origin, e.Command)
	if e.Code != 0 {
		fmt.Fprintf(&b, " with exit status %d", e.Code)
	}
	if e.Reason != "" {
		b.WriteString(" (" + e.Reason + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// runTool runs one package manager command in the target and decides, from
// its status and its output, whether it worked.
func runTool(ctx context.Context, env *modules.Env, tl tool, inv invocation) error {
	if env.Exec == nil {
		return fmt.Errorf("%s: %s: %w", inv.origin, inv.what, modules.ErrNoExecutor)
	}
	an := &analysis{family: tl.family}
	w := newLineWriter(env.Console, "["+tl.label+"] ", an.line)
	code, err := env.Exec.Run(ctx, modules.Command{Argv: inv.argv, Dir: "/", Env: inv.env, Output: w})
	w.Flush()
	if err != nil {
		return fmt.Errorf("%s: %s: %w", inv.origin, inv.what, err)
	}
	reason, failed := exitMeaning(tl.family, code)
	switch {
	case failed:
	case an.scriptlet != "":
		// dnf (and yum) finish the transaction and exit 0 when a %post
		// fails; the package is installed but not set up.
		reason, failed = "a package scriptlet failed; "+tl.label+" still exited 0", true
	case an.repo != "":
		// A configured repository was skipped: what was installed or
		// upgraded is not what the configuration asked for.
		reason, failed = "a repository could not be read; "+tl.label+" skipped it and still exited 0", true
	}
	if !failed {
		return nil
	}
	e := &Error{Origin: inv.origin, Command: inv.what, Code: code, Reason: reason, Message: an.message()}
	if o, ok := an.blame(inv.pkgs); ok {
		e.Origin = o
	}
	return e
}

// exitMeaning maps a status to its meaning and whether it is a failure.
func exitMeaning(f Family, code int) (string, bool) {
	if code == 0 {
		return "", false
	}
	switch f {
	case Zypper:
		// zypper(8) EXIT CODES. 102/103 only say a reboot or a zypper
		// restart is due: the work is done.
		switch code {
		case 102, 103:
			return "", false
		case 1:
			return "zypper hit an unexpected situation", true
		case 2:
			return "syntax error in the zypper command line", true
		case 3:
			return "invalid arguments to zypper", true
		case 4:
			return "libzypp reported a problem: an unresolvable request (conflict, missing dependency) or a broken repository", true
		case 5:
			return "insufficient privileges", true
		case 6:
			return "no repositories are defined", true
		case 7:
			return "the package system is locked: another zypper holds /run/zypp.pid and did not release it within ZYPP_LOCK_TIMEOUT=" + ZyppLockTimeout + "s", true
		case 8:
			return "the commit failed: a %pre scriptlet failed or files conflict", true
		case 104:
			return "a requested package or capability was not found in any repository", true
		case 105:
			return "zypper was interrupted by a signal", true
		case 106:
			return "a repository failed to refresh and was skipped", true
		case 107:
			return "a package scriptlet (%post, %postun...) failed; the package was installed but is not set up", true
		}
	case DNF:
		switch code {
		case 1:
			return "dnf reported an error", true
		case 2:
			return "invalid dnf command line", true
		case 200:
			return "dnf could not take its lock", true
		}
	case Apt:
		switch code {
		case 100:
			return "apt-get reported an error (E: lines above)", true
		}
	}
	return "", true
}

// ---- output analysis ----

var (
	// rpm itself, under zypper and dnf: "warning: %post(foo-1.0-1.noarch)
	// scriptlet failed, exit status 1", "error: %prein(...) scriptlet failed".
	rpmScriptletRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:warning|error): %([a-z]+)\((.+)\) scriptlet failed`)
	})
	// dnf 4: "Error in POSTIN scriptlet in rpm package foo".
	dnf4ScriptletRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^Error in (PREIN|POSTIN|PREUN|POSTUN|PRETRANS|POSTTRANS) scriptlet in rpm package (\S+)`)
	})
	// dnf 5: ">>> Error in %post scriptlet: foo-0:1.0-1.noarch",
	// ">>> Non-critical error in %post scriptlet: ...",
	// ">>> Error in post-install scriptlet: ...".
	dnf5ScriptletRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^>>> (?:Non-critical )?[Ee]rror in (%?[a-z-]+) scriptlet: (\S+)`)
	})

	notFoundRes = sync.OnceValue(func() []*regexp.Regexp {
		return []*regexp.Regexp{
			regexp.MustCompile(`^Package '([^']+)' not found\.`),                      // zypper
			regexp.MustCompile(`^No provider of '([^']+)' found\.`),                   // zypper
			regexp.MustCompile(`^No match for argument: (\S+)`),                       // dnf 4 and 5
			regexp.MustCompile(`^E: Unable to locate package (\S+)`),                  // apt
			regexp.MustCompile(`^E: Package '([^']+)' has no installation candidate`), // apt
			regexp.MustCompile(`^E: Version '[^']+' for '([^']+)' was not found`),     // apt
		}
	})
	dpkgErrorRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^dpkg: error processing (?:package|archive) (\S+)`) })

	// rpm's file conflict lines, printed by dnf and yum: "file /x
	// conflicts between attempted installs of a-1-1.noarch and b-1-1.noarch",
	// "file /x from install of a-1 conflicts with file from package b-1".
	rpmConflictRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\s*file \S+ (?:conflicts between attempted installs of|from install of) (\S+)`)
	})
	// zypper's summary before it lists the conflicts.
	zypperConflictRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Detected \d+ file conflicts?`) })

	// A repository that could not be read. zypper and apt go on without
	// it (zypper exits 106 at the end, apt-get update 0 after a W: line),
	// dnf too when the repository or dnf.conf says skip_if_unavailable,
	// and then exits 0.
	repoFailureRes = sync.OnceValue(func() []*regexp.Regexp {
		return []*regexp.Regexp{
			regexp.MustCompile(`^Repository '[^']+' is invalid\.`),                                          // zypper
			regexp.MustCompile(`^Warning: Skipping repository '[^']+'`),                                     // zypper
			regexp.MustCompile(`^(?:Error: )?Failed to download metadata for repo '[^']+'`),                 // dnf 4
			regexp.MustCompile(`^Ignoring repositories: `),                                                  // dnf 4, skip_if_unavailable
			regexp.MustCompile(`^Failed to download metadata .*for repository '[^']+'`),                     // dnf 5
			regexp.MustCompile(`^[EW]: Failed to fetch `),                                                   // apt
			regexp.MustCompile(`^W: Some index files failed to download`),                                   // apt
			regexp.MustCompile(`^E: The repository '[^']+' (?:does not have a Release file|is not signed)`), // apt
		}
	})
)

// analysis reads the output of one command for what went wrong.
type analysis struct {
	family Family
	// scriptlet is the first line reporting a scriptlet failure that
	// leaves an installed package unconfigured.
	scriptlet string
	// specific is the first line naming a failure precisely (package not
	// found, dpkg error); generic the last line that reads as an error.
	specific, generic string
	// culprits are package names or NEVRAs the failure lines name.
	culprits []string
	// repo is the first line saying a repository could not be read.
	repo string
}

func (a *analysis) line(l string) {
	if m := rpmScriptletRe().FindStringSubmatch(l); m != nil {
		a.scriptletLine(l, m[1] != "postun", m[2])
		return
	}
	if m := dnf4ScriptletRe().FindStringSubmatch(l); m != nil {
		a.scriptletLine(l, m[1] != "POSTUN", m[2])
		return
	}
	if m := dnf5ScriptletRe().FindStringSubmatch(l); m != nil {
		kind := m[1]
		a.scriptletLine(l, kind != "%postun" && kind != "post-uninstall", m[2])
		return
	}
	for _, re := range notFoundRes() {
		if m := re.FindStringSubmatch(l); m != nil {
			a.note(l, m[1])
			return
		}
	}
	if m := dpkgErrorRe().FindStringSubmatch(l); m != nil {
		a.note(l, m[1])
		return
	}
	if m := rpmConflictRe().FindStringSubmatch(l); m != nil {
		a.note(strings.TrimSpace(l), m[1])
		return
	}
	if zypperConflictRe().MatchString(l) {
		a.note(l, "")
		return
	}
	for _, re := range repoFailureRes() {
		if re.MatchString(l) {
			if a.repo == "" {
				a.repo = l
			}
			return
		}
	}
	if isErrorLine(l) {
		a.generic = l
	}
}

func (a *analysis) scriptletLine(l string, fatal bool, pkg string) {
	if !fatal {
		return // %postun of the version being replaced: rpm calls it non-fatal
	}
	if a.scriptlet == "" {
		a.scriptlet = l
	}
	a.note(l, pkg)
}

func (a *analysis) note(l, pkg string) {
	if a.specific == "" {
		a.specific = l
	}
	if len(a.culprits) < 32 {
		a.culprits = append(a.culprits, pkg)
	}
}

func isErrorLine(l string) bool {
	for _, p := range []string{"E: ", "Error: ", "Error:", "error: ", "ERROR", "Problem: ", "Abort", "Installation has completed with error", "Transaction failed", "Failed to"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

func (a *analysis) message() string {
	msg := a.specific
	if msg == "" {
		msg = a.scriptlet
	}
	if msg == "" {
		msg = a.generic
	}
	// A repository that could not be read explains most other failures
	// (a package "not found" was in it): it comes first.
	switch {
	case a.repo == "" || a.repo == msg:
		return msg
	case msg == "":
		return a.repo
	}
	return a.repo + "; " + msg
}

// blame finds the requested package a failure line names, so the error
// points at the line of the configuration that asked for it.
func (a *analysis) blame(pkgs []requested) (config.Origin, bool) {
	for _, c := range a.culprits {
		c = strings.Trim(c, "'\"")
		name, _, _ := strings.Cut(c, ":") // apt's foo:amd64
		for _, p := range pkgs {
			if c == p.arg || c == p.name || name == p.name || nevraName(c) == p.name {
				return p.origin, true
			}
		}
	}
	return config.Origin{}, false
}

// nevraName strips "-[epoch:]version-release[.arch]" from an rpm NEVRA.
func nevraName(s string) string {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return s
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return s
	}
	return s[:j]
}

// ---- output streaming ----

// maxLine bounds a line kept in memory; a longer one is passed on in
// pieces (progress bars can write megabytes without a newline).
const maxLine = 64 << 10

// lineWriter passes every output line, prefixed, to the console and to fn.
// A carriage return inside a line is a terminal redraw: only the text
// after the last one is kept.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	fn     func(string)
	buf    []byte
}

func newLineWriter(w io.Writer, prefix string, fn func(string)) *lineWriter {
	if w == nil {
		w = io.Discard
	}
	return &lineWriter{w: w, prefix: prefix, fn: fn}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= maxLine {
				rest := append([]byte(nil), l.buf[maxLine:]...)
				l.buf = l.buf[:maxLine]
				l.emit()
				l.buf = append(l.buf, rest...)
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		p = p[i+1:]
		l.emit()
	}
	return n, nil
}

// Flush passes on a last line without a newline.
func (l *lineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit()
	}
}

func (l *lineWriter) emit() {
	line := bytes.TrimRight(l.buf, "\r")
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	s := string(line)
	l.buf = l.buf[:0]
	if l.fn != nil {
		l.fn(s)
	}
	// A console that fails must not fail the installation.
	_, _ = io.WriteString(l.w, l.prefix+s+"\n")
}
