// Package scripts runs the programs a configuration brings along — cloud-init
// bootcmd, boothooks, runcmd and `#!` user scripts, and the Combustion script —
// inside the target snapshot, with the semantics of the tool each comes from.
//
// Order (SPEC §2 step 6 and cloud-init's stages): bootcmd and boothooks first
// (cloud-init runs them early, in the init stage), then the Combustion script,
// then runcmd and user scripts (cloud-init's final stage). Every program runs
// through env.Exec (the snapshot chroot), its output goes line by line to the
// console prefixed with its name, and a non-zero exit fails the run — the
// whole first boot rolls back, users and keys included — unless the program
// carries the NonFatalMarker line, which makes its exit status a warning.
package scripts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Module is the name steps carry.
const Module = "scripts"

// Locations inside the target where programs are put for their run. /run is a
// tmpfs in the snapshot chroot, so nothing is left in the snapshot; the files
// are removed after the run anyway, for executors without that tmpfs.
const (
	ScriptDir     = "/run/provision/scripts"
	CombustionDir = "/run/provision/combustion"
)

// NonFatalMarker is the line that makes a program's failure a warning
// instead of a rollback of the whole run: in a `#!` script, a boothook or
// the Combustion script (where Combustion's own magic comments live), or as
// a runcmd/bootcmd entry of its own (cloud-init writes the list into one
// script, so the mark covers the list). Further words after "provision:"
// are allowed, as Combustion allows several flags on its line.
const NonFatalMarker = "# provision: non-fatal"

// nonFatalDetail is what the plan says of a marked program.
const nonFatalDetail = "non-fatal: its failure is a warning, the rest is committed"

// marksNonFatal reports whether body has a "# provision: ... non-fatal ..."
// line.
func marksNonFatal(body []byte) bool {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("#"))
		if !ok {
			continue
		}
		rest, ok = bytes.CutPrefix(bytes.TrimSpace(rest), []byte("provision:"))
		if !ok {
			continue
		}
		for _, w := range bytes.Fields(rest) {
			if string(w) == "non-fatal" {
				return true
			}
		}
	}
	return false
}

// AtomicNote is what a plan says when it runs a program not marked
// non-fatal: its failure undoes the whole run, which a cloud-init user does
// not expect (cloud-init logs a failed runcmd and keeps the rest). "" when
// the plan runs no such program.
func AtomicNote(steps []modules.Step) string {
	for _, s := range steps {
		if s.Module == Module && !strings.Contains(s.Detail, nonFatalDetail) {
			return "scripts: a program that fails rolls the whole run back (users, keys, files too); a line \"" +
				NonFatalMarker + "\" in it (or a runcmd entry of its own) makes its failure a warning"
		}
	}
	return ""
}

// withDetail appends more to a plan detail.
func withDetail(detail, more string) string {
	if detail == "" {
		return more
	}
	return detail + "; " + more
}

// SnapshotPather is implemented by executors that know where the snapshot
// lives as seen from the old root (e.g. "/.snapshots/5/snapshot"); that is
// what transactional-update exports as TRANSACTIONAL_UPDATE_ROOT, which the
// Combustion script inherits. Executors without it give "/".
type SnapshotPather interface {
	SnapshotPath() string
}

// Phase selects part of the scripts plan.
type Phase int

const (
	// Early is bootcmd and boothooks.
	Early Phase = 1 << iota
	// Late is the Combustion script, runcmd and user scripts.
	Late
	// All is Early then Late.
	All = Early | Late
)

// Plan returns every script step in run order (Early then Late).
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	return PlanPhase(cfg, root, All)
}

// PlanPhase returns the steps of the given phases, for an engine that wants
// bootcmd to run before the other modules, as cloud-init does.
func PlanPhase(cfg *config.Config, _ *rootfs.Root, phase Phase) ([]modules.Step, error) {
	var bootcmd, boothooks, combustion, runcmd, user []config.Script
	for _, s := range cfg.Scripts {
		switch s.Kind {
		case config.ScriptBootcmd:
			bootcmd = append(bootcmd, s)
		case config.ScriptBoothook:
			boothooks = append(boothooks, s)
		case config.ScriptCombustion:
			combustion = append(combustion, s)
		case config.ScriptRuncmd:
			runcmd = append(runcmd, s)
		case config.ScriptUser:
			user = append(user, s)
		default:
			return nil, fmt.Errorf("%s: unknown script kind %q", s.Origin, s.Kind)
		}
	}
	instanceID := cfg.InstanceID.Value

	var steps []modules.Step
	if phase&Early != 0 {
		if len(bootcmd) > 0 {
			steps = append(steps, shellStep("bootcmd", bootcmd, instanceID))
		}
		for i, s := range boothooks {
			st, err := programStep("boothook", s, i, instanceID)
			if err != nil {
				return nil, err
			}
			steps = append(steps, st)
		}
	}
	if phase&Late != 0 {
		for _, s := range combustion {
			st, err := combustionStep(s)
			if err != nil {
				return nil, err
			}
			steps = append(steps, st)
		}
		if len(runcmd) > 0 {
			steps = append(steps, shellStep("runcmd", runcmd, instanceID))
		}
		for i, s := range user {
			st, err := programStep("script", s, i, instanceID)
			if err != nil {
				return nil, err
			}
			steps = append(steps, st)
		}
	}
	return steps, nil
}

// Shellify builds the shell script cloud-init makes of a bootcmd or runcmd
// list: a "#!/bin/sh" line, then one line per entry — a string entry
// verbatim, a list entry with every word single-quoted. No "set -e": like
// cloud-init, the script's status is that of its last command.
func Shellify(entries []config.Script) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n")
	for _, e := range entries {
		if e.Argv != nil {
			for i, a := range e.Argv {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(ShellQuote(a))
			}
			b.WriteByte('\n')
			continue
		}
		b.Write(e.Body)
		if len(e.Body) == 0 || e.Body[len(e.Body)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// ShellQuote quotes s as one word for /bin/sh, the way cloud-init does for
// list entries: always in single quotes; a quote inside ends the quoting,
// adds an escaped quote and reopens it.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellStep runs the bootcmd or runcmd list as one script. cloud-init runs
// bootcmd as `/bin/sh FILE` with INSTANCE_ID set, and the runcmd script
// directly (it starts with #!/bin/sh).
func shellStep(kind string, entries []config.Script, instanceID string) modules.Step {
	body := Shellify(entries)
	file := path.Join(ScriptDir, kind)
	argv := []string{file}
	if kind == "bootcmd" {
		argv = []string{"/bin/sh", file}
	}
	detail := fmt.Sprintf("%d command", len(entries))
	if len(entries) != 1 {
		detail += "s"
	}
	origin := entries[0].Origin
	nonFatal := false
	for _, e := range entries {
		if e.Argv == nil && marksNonFatal(e.Body) {
			nonFatal = true
		}
	}
	if nonFatal {
		detail = withDetail(detail, nonFatalDetail)
	}
	return modules.Step{
		Module: Module,
		Action: "run",
		Target: kind,
		Detail: detail,
		Origin: origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			files := map[string][]byte{path.Base(file): body}
			return runIn(ctx, env, run{
				label:    kind,
				what:     kind,
				origin:   origin,
				dir:      ScriptDir,
				files:    files,
				argv:     argv,
				cwd:      "/",
				env:      cloudEnv(instanceID),
				nonFatal: nonFatal,
			})
		},
	}
}

// programStep runs a boothook or a user script: written to a file and
// executed with its own interpreter line; a body without one runs under
// /bin/sh (cloud-init would fail with "Exec format error").
func programStep(kind string, s config.Script, index int, instanceID string) (modules.Step, error) {
	body := s.Body
	if kind == "boothook" {
		body = stripBoothookHeader(body)
	}
	if len(body) == 0 {
		return modules.Step{}, fmt.Errorf("%s: empty %s", s.Origin, kind)
	}
	name := fileName(s.Name, fmt.Sprintf("part-%03d", index+1))
	dir := path.Join(ScriptDir, kind+"s")
	file := path.Join(dir, name)
	argv := []string{file}
	if !bytes.HasPrefix(body, []byte("#!")) {
		argv = []string{"/bin/sh", file}
	}
	detail := s.Frequency
	if detail != "" {
		detail = "per-" + detail
	}
	label := kind + " " + name
	nonFatal := marksNonFatal(body)
	if nonFatal {
		detail = withDetail(detail, nonFatalDetail)
	}
	return modules.Step{
		Module: Module,
		Action: "run " + kind,
		Target: name,
		Detail: detail,
		Origin: s.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			return runIn(ctx, env, run{
				label:    label,
				what:     label,
				origin:   s.Origin,
				dir:      dir,
				files:    map[string][]byte{name: body},
				argv:     argv,
				cwd:      "/",
				env:      cloudEnv(instanceID),
				nonFatal: nonFatal,
			})
		},
	}, nil
}

// combustionStep runs the Combustion script as Combustion does after its
// prepare stage: chrooted into the new snapshot (transactional-update shell),
// cwd = a copy of the config directory, `./script`.
func combustionStep(s config.Script) (modules.Step, error) {
	files, err := combustionFiles(s)
	if err != nil {
		return modules.Step{}, err
	}
	var flags []string
	if s.NeedsNetwork {
		flags = append(flags, "network")
	}
	if s.Prepare {
		flags = append(flags, "prepare")
	}
	detail := ""
	if len(flags) > 0 {
		detail = "combustion: " + strings.Join(flags, " ")
	}
	nonFatal := marksNonFatal(s.Body)
	if nonFatal {
		detail = withDetail(detail, nonFatalDetail)
	}
	return modules.Step{
		Module: Module,
		Action: "run",
		Target: "combustion script",
		Detail: detail,
		Origin: s.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			snap := "/"
			if sp, ok := env.Exec.(SnapshotPather); ok && sp.SnapshotPath() != "" {
				snap = sp.SnapshotPath()
			}
			return runIn(ctx, env, run{
				label:  "combustion",
				what:   "combustion script",
				origin: s.Origin,
				dir:    CombustionDir,
				files:  files,
				argv:   combustionArgv(s.Body),
				cwd:    CombustionDir,
				env: []string{
					"TRANSACTIONAL_UPDATE=true",
					"TRANSACTIONAL_UPDATE_ROOT=" + snap,
					"LANG=C",
					"PROVISION=1",
				},
				nonFatal: nonFatal,
			})
		},
	}, nil
}

// combustionArgv: Combustion starts `./script` from a shell, which runs a
// file without an interpreter line as a shell script.
func combustionArgv(body []byte, extra ...string) []string {
	if bytes.HasPrefix(body, []byte("#!")) {
		return append([]string{"./script"}, extra...)
	}
	return append([]string{"/bin/sh", "./script"}, extra...)
}

// combustionFiles is the config directory: every sibling file, then the
// script itself (which wins over a sibling named "script").
func combustionFiles(s config.Script) (map[string][]byte, error) {
	files := make(map[string][]byte, len(s.Files)+1)
	for rel, data := range s.Files {
		clean, err := relPath(rel)
		if err != nil {
			return nil, fmt.Errorf("%s: combustion file %q: %w", s.Origin, rel, err)
		}
		files[clean] = data
	}
	if len(s.Body) == 0 {
		return nil, fmt.Errorf("%s: empty combustion script", s.Origin)
	}
	files["script"] = s.Body
	return files, nil
}

// relPath accepts a path relative to the config directory that stays inside it.
func relPath(rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return "", errors.New("not a relative path")
	}
	clean := path.Clean(rel)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return "", errors.New("path leaves the config directory")
	}
	return clean, nil
}

// fileName makes a script name usable as one file name.
func fileName(name, fallback string) string {
	name = path.Base(strings.ReplaceAll(name, "\x00", ""))
	if name == "" || name == "." || name == ".." || name == "/" {
		return fallback
	}
	return name
}

// stripBoothookHeader removes the "#cloud-boothook" line, as cloud-init does
// before it writes the hook out.
func stripBoothookHeader(body []byte) []byte {
	const header = "#cloud-boothook"
	if bytes.HasPrefix(body, []byte(header)) {
		rest := body[len(header):]
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			rest = rest[i+1:]
		} else {
			rest = nil
		}
		body = rest
	}
	return bytes.TrimLeft(body, " \t\r\n")
}

// cloudEnv is what cloud-init adds for bootcmd and boothooks.
func cloudEnv(instanceID string) []string {
	env := []string{"PROVISION=1"}
	if instanceID != "" {
		env = append(env, "INSTANCE_ID="+instanceID)
	}
	return env
}

type run struct {
	label  string // console prefix
	what   string // error message subject
	origin config.Origin
	dir    string            // directory inside the target to hold files
	files  map[string][]byte // relative to dir
	argv   []string
	cwd    string
	env    []string
	// nonFatal turns a non-zero exit into a modules.NonFatalError.
	nonFatal bool
}

// runIn puts r's files into the target, runs the program and removes the files.
func runIn(ctx context.Context, env *modules.Env, r run) (err error) {
	if env.Exec == nil {
		return fmt.Errorf("%s: %s: %w", r.origin, r.what, modules.ErrNoExecutor)
	}
	if err := env.Root.MkdirAll(r.dir, 0o700, rootfs.RootOwner); err != nil {
		return fmt.Errorf("%s: %s: %w", r.origin, r.what, err)
	}
	defer func() {
		if cerr := removeTree(env.Root, r.dir); cerr != nil && err == nil {
			err = fmt.Errorf("%s: %s: cleaning up: %w", r.origin, r.what, cerr)
		}
	}()
	if err := writeFiles(env.Root, r.dir, r.files); err != nil {
		return fmt.Errorf("%s: %s: %w", r.origin, r.what, err)
	}
	out := NewPrefixWriter(env.Console, "["+r.label+"] ")
	defer out.Flush()
	code, err := env.Exec.Run(ctx, modules.Command{
		Argv:   r.argv,
		Dir:    r.cwd,
		Env:    r.env,
		Output: out,
	})
	if err != nil {
		return fmt.Errorf("%s: %s: %w", r.origin, r.what, err)
	}
	if code != 0 {
		e := &ExitError{Origin: r.origin, What: r.what, Code: code}
		if r.nonFatal {
			return &modules.NonFatalError{Err: e}
		}
		return e
	}
	return nil
}

// ExitError is a program that ran and exited non-zero.
type ExitError struct {
	Origin config.Origin
	What   string // "combustion script", "runcmd", "script part-001"
	Code   int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: %s exited with status %d", e.Origin, e.What, e.Code)
}

func writeFiles(root *rootfs.Root, dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := path.Join(dir, n)
		if d := path.Dir(p); d != dir {
			if err := root.MkdirAll(d, 0o700, rootfs.RootOwner); err != nil {
				return err
			}
		}
		// 0755: what a copy from a vfat stick (Combustion's usual medium)
		// gives, so sibling helper scripts stay executable; the directory
		// itself is 0700.
		if err := root.WriteFile(p, files[n], 0o755, rootfs.RootOwner); err != nil {
			return err
		}
	}
	return nil
}

// removeTree deletes dir inside the target. RemoveAll does not follow
// symlinks below dir, and dir itself is resolved inside the root. The
// removal bypasses root, which must then forget what it knew of the
// tree (the directories it found, which it no longer stats).
func removeTree(root *rootfs.Root, dir string) error {
	host, err := root.Resolve(dir)
	if err != nil {
		return err
	}
	defer root.Forget()
	if err := os.RemoveAll(host); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// PrefixWriter writes every line it receives to W with Prefix in front, one
// Write per line; a partial line waits for its end (or Flush).
type PrefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

// NewPrefixWriter returns a PrefixWriter over w (nil: discard).
func NewPrefixWriter(w io.Writer, prefix string) *PrefixWriter {
	if w == nil {
		w = io.Discard
	}
	return &PrefixWriter{w: w, prefix: prefix}
}

func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.buf = append(p.buf, b...)
			break
		}
		line := make([]byte, 0, len(p.prefix)+len(p.buf)+i+1)
		line = append(line, p.prefix...)
		line = append(line, p.buf...)
		line = append(line, b[:i+1]...)
		p.buf = p.buf[:0]
		b = b[i+1:]
		if _, err := p.w.Write(line); err != nil {
			return n - len(b), err
		}
	}
	return n, nil
}

// Flush writes a pending partial line, completed with a newline.
func (p *PrefixWriter) Flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) == 0 {
		return
	}
	line := append([]byte(p.prefix), p.buf...)
	p.buf = p.buf[:0]
	_, _ = p.w.Write(append(line, '\n'))
}
