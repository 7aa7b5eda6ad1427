// The Go runtime's container-aware GOMAXPROCS (Go 1.25) keeps the
// cgroup's CPU quota open from the start and has its value reread in the
// background while the process lives; off, the runtime only looks at the
// cgroup once and takes the CPUs the process may run on. A run does not
// need it: in an initrd there is no container, and elsewhere a run mostly
// waits on the disk. Measured on `provision --version` against the same
// build without these lines, fresh copies, 500 interleaved starts in each
// order (test/bench/startup): 4.56 ms against 4.79 ms, 4.94 against 5.09.
// GOMAXPROCS in the environment still sets it.

//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command provision is the first-boot provisioning agent. This file holds the
// command line only: flags, subcommands and exit codes; the engine is in
// package provision.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/provision-dev/provision/provision"
	"github.com/provision-dev/provision/provision/targetimage"
)

// version is stamped by the Makefile (-ldflags -X main.version=...).
var version = "dev"

// Exit codes, SPEC §7.
const (
	exitOK      = 0
	exitFailed  = 1
	exitInvalid = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// inInitrd is provision.InInitrd, replaced by tests.
var inInitrd = provision.InInitrd

func run(args []string, stdout, stderr io.Writer) int {
	name := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return exitOK
		case "-version", "--version":
			printVersion(stdout)
			return exitOK
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "provision: unknown command %q\n\n", name)
		usage(stderr)
		return exitInvalid
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch c.name {
	case "run":
		return runCmd(ctx, args, stdout, stderr)
	case "validate":
		return validateCmd(ctx, args, stdout, stderr)
	case "status":
		return statusCmd(ctx, args, stdout, stderr)
	case "init":
		return initCmd(ctx, args, stdout, stderr)
	case "seed":
		return seedCmd(ctx, args, stdout, stderr)
	case "schema":
		return schemaCmd(ctx, args, stdout, stderr)
	case "version":
		return versionCmd(args, stdout, stderr)
	default:
		return helpCmd(args, stdout, stderr)
	}
}

// helpCmd is `provision help [COMMAND]`.
func helpCmd(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		lookup("help").help(stdout)
	case len(args) == 0:
		usage(stdout)
	case len(args) > 1:
		fmt.Fprintln(stderr, "provision help: give at most one COMMAND")
		return exitInvalid
	case lookup(args[0]) == nil:
		fmt.Fprintf(stderr, "provision help: unknown command %q\n", args[0])
		return exitInvalid
	default:
		lookup(args[0]).help(stdout)
	}
	return exitOK
}

// runFlags are the flags of `provision run` (and of the bare `provision`).
type runFlags struct {
	srcs                       multiFlag
	root, report               string
	dry, asJSON, strict, force bool
	diff                       bool
}

func (f *runFlags) define(fs *flag.FlagSet) {
	fs.Var(&f.srcs, "source", "configuration source `PATH|URL`: directory, image file, block device, URL, or ec2:URL / openstack:URL / nocloud:URL (repeatable)")
	fs.StringVar(&f.root, "root", "", "target root `DIR` (default /sysroot, in an initrd only; none for --dry-run); a dry run also takes a disk IMAGE, mounted read-only")
	fs.BoolVar(&f.dry, "dry-run", false, "print the plan; change nothing")
	fs.BoolVar(&f.diff, "diff", false, "with the plan (implies --dry-run), a unified diff of every file the run would change against --root or the base tree, and the text of every script it would run, secrets masked; against --root it needs root")
	fs.BoolVar(&f.asJSON, "json", false, "print the plan or result as JSON")
	fs.BoolVar(&f.strict, "strict", false, "treat warnings (unknown keys...) as errors")
	fs.BoolVar(&f.force, "force", false, "provision even when the first-boot predicate says no")
	fs.StringVar(&f.report, "report", provision.DefaultReportPath, "the `FILE` to write the run report to")
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f runFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	f.define(fs)
	pos, err := lookup("run").parse(fs, args, stdout, stderr)
	if err != nil {
		return parseResult(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "provision: unexpected argument %q (sources are given with --source)\n", pos[0])
		return exitInvalid
	}
	f.dry = f.dry || f.diff
	if f.root == "" && !f.dry {
		// The boot job's default target is only safe in the initrd: on a
		// booted system /sysroot may exist (OSTree) and is not ours.
		if !inInitrd() {
			fmt.Fprintln(stderr, "provision: not running in an initrd (no /etc/initrd-release): refusing to provision /sysroot.\n"+
				"Give --root DIR to provision a tree, --dry-run to see the plan, or see 'provision help run'.")
			return exitInvalid
		}
		f.root = "/sysroot"
	}
	var privateMounts func() (int, bool)
	if !f.dry && os.Geteuid() == 0 && ownCommandLine(args) {
		// The run's mounts live and die with it (see runInPrivateMounts).
		// On a tree that mounts only for the programs a config runs,
		// that is decided once the config is read (Options.PrivateMounts):
		// a run that writes files only costs one process, not two.
		if mountsFromTheStart(f.root) {
			if code, ok := runInPrivateMounts(stdout, stderr); ok {
				return code
			}
		} else {
			privateMounts = func() (int, bool) { return runInPrivateMounts(stdout, stderr) }
		}
	}
	if f.dry && f.root != "" {
		// A dry run may plan against a disk image's root, read-only.
		root, release, err := openRoot(ctx, f.root)
		if err != nil {
			fmt.Fprintf(stderr, "provision: %v\n", err)
			return exitInvalid
		}
		defer release()
		f.root = root
	}
	opts, err := provision.SystemOptions(ctx, provision.SystemConfig{
		Root:       f.root,
		SourceSpec: f.srcs,
		DryRun:     f.dry,
		Diff:       f.diff,
		Strict:     f.strict,
		Force:      f.force,
		Console:    stderr,
		InInitrd:   inInitrd(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "provision: %v\n", err)
		return exitInvalid
	}
	opts.PrivateMounts = privateMounts
	res := provision.Run(ctx, opts)
	if res.Delegated {
		return res.DelegatedExit
	}
	if !f.dry {
		if err := provision.WriteReport(res, f.report, f.root); err != nil {
			fmt.Fprintf(stderr, "provision: writing the report: %v\n", err)
		}
	}
	if f.asJSON {
		writeJSON(stdout, runDocument(res, f.dry), stderr)
	} else if f.dry {
		printPlan(stdout, res)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return exitCode(res, stderr)
}

func printPlan(w io.Writer, res *provision.Result) {
	printHeader(w, res)
	if res.Status != provision.StatusPlanned {
		return
	}
	for _, l := range res.Target {
		fmt.Fprintf(w, "# target: %s\n", l)
	}
	if len(res.Plan) == 0 {
		fmt.Fprintln(w, "# nothing would change")
	}
	for _, n := range provision.PlanNotes(res.Plan) {
		fmt.Fprintf(w, "# %s\n", n)
	}
	for _, s := range res.Plan {
		fmt.Fprintln(w, s.String())
	}
	if res.Diff != "" {
		fmt.Fprintln(w, "# diff:")
		fmt.Fprint(w, res.Diff)
	}
}

// printHeader says what the plan is made of: each source with its
// documents, and the instance-id (which decides a first boot) with where
// it came from.
func printHeader(w io.Writer, res *provision.Result) {
	listed := map[int]bool{}
	for _, s := range res.Sources {
		if s.Documents == 0 && s.Presence != "present" {
			line := "# source " + s.Name + ": " + s.Presence
			if s.Reason != "" {
				line += " (" + s.Reason + ")"
			}
			fmt.Fprintln(w, line)
			continue
		}
		fmt.Fprintf(w, "# source %s: %d document(s)\n", s.Name, s.Documents)
		for i, d := range res.Documents {
			if rest, ok := strings.CutPrefix(d.Origin, s.Name); ok && !listed[i] {
				listed[i] = true
				fmt.Fprintf(w, "#   %s: %s, %d bytes\n", strings.TrimPrefix(rest, ":"), d.Kind, d.Size)
			}
		}
	}
	for i, d := range res.Documents {
		if !listed[i] {
			fmt.Fprintf(w, "# document %s: %s, %d bytes\n", d.Origin, d.Kind, d.Size)
		}
	}
	if res.InstanceID != "" {
		fmt.Fprintf(w, "# instance-id: %s (from %s)\n", res.InstanceID, res.InstanceIDFrom)
	}
	if res.Boot != "" {
		fmt.Fprintf(w, "# first boot: %s\n", res.Boot)
	}
}

func exitCode(res *provision.Result, stderr io.Writer) int {
	switch {
	case res.Err == nil:
		if res.Status == provision.StatusNothing {
			fmt.Fprintf(stderr, "provision: nothing to do: %s\n", res.Reason)
		}
		return exitOK
	case errors.Is(res.Err, provision.ErrInvalid):
		fmt.Fprintf(stderr, "provision: %v\n", res.Err)
		return exitInvalid
	default:
		fmt.Fprintf(stderr, "provision: run failed: %v\n", res.Err)
		return exitFailed
	}
}

// validateFlags are the flags of `provision validate`.
type validateFlags struct {
	strict, asJSON bool
	root           string
}

func (f *validateFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&f.strict, "strict", false, "treat warnings as errors")
	fs.StringVar(&f.root, "root", "", "check against the target tree `DIR`, or the root filesystem of a disk IMAGE (read-only; needs root); without it, what only the image can tell (units, accounts) is a warning")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f validateFlags
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	f.define(fs)
	paths, err := lookup("validate").parse(fs, args, stdout, stderr)
	if err != nil {
		return parseResult(err)
	}
	if len(paths) == 0 {
		fmt.Fprintln(stderr, "provision validate: give at least one FILE, DIR or IMAGE")
		return exitInvalid
	}
	root, release, err := openRoot(ctx, f.root)
	if err != nil {
		fmt.Fprintf(stderr, "provision validate: %v\n", err)
		return exitInvalid
	}
	defer release()
	code := exitOK
	doc := newValidationJSON(stderr)
	for _, path := range paths {
		res, c := checkSource(ctx, path, root, f.strict, doc.messages())
		if f.asJSON {
			doc.add(path, res, c)
		} else if c == exitOK {
			fmt.Fprintf(stdout, "%s: valid (%d steps)\n", path, len(res.Plan))
		}
		code = max(code, c)
	}
	if f.asJSON {
		writeJSON(stdout, doc.doc, stderr)
	}
	return code
}

// openRoot opens a --root for planning: a directory as it is, a disk image
// mounted read-only (targetimage); "" stays "" (the built-in base tree).
func openRoot(ctx context.Context, root string) (string, func() error, error) {
	if root == "" {
		return "", func() error { return nil }, nil
	}
	return targetimage.Open(ctx, root)
}

// checkSource plans the configuration at path without a target, prints its
// warnings and errors (one per line, with their origin) to stderr, and
// returns the result (nil when path could not be read) and the exit status.
// validate and seed share it, so both report a config in the same words.
func checkSource(ctx context.Context, path, root string, strict bool, stderr io.Writer) (*provision.Result, int) {
	opts, err := provision.SystemOptions(ctx, provision.SystemConfig{SourceSpec: []string{path}, Root: root, DryRun: true, Strict: strict})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return nil, exitInvalid
	}
	res := provision.Run(ctx, opts)
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	switch {
	case res.Err == nil && res.Status == provision.StatusNothing:
		// validate was given something to check and found nothing.
		fmt.Fprintf(stderr, "%s: no configuration found: %s\n", path, res.Reason)
		return res, exitInvalid
	case res.Err != nil:
		for _, line := range strings.Split(res.Err.Error(), "\n") {
			fmt.Fprintln(stderr, strings.TrimPrefix(line, provision.ErrInvalid.Error()+": "))
		}
		if errors.Is(res.Err, provision.ErrInvalid) {
			return res, exitInvalid
		}
		return res, exitFailed
	}
	return res, exitOK
}

// statusFlags are the flags of `provision status`.
type statusFlags struct {
	asJSON, long, wait bool
	timeout            time.Duration
	path               string
}

func (f *statusFlags) define(fs *flag.FlagSet) {
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON (doc/json.md, kind \"status\")")
	fs.BoolVar(&f.long, "long", false, "print the result, times, errors, warnings, modules and the output of failed steps")
	fs.BoolVar(&f.wait, "wait", false, "wait until the run has finished")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Minute, "with --wait: give up after this long, a duration `D` such as 90s")
	fs.StringVar(&f.path, "report", provision.DefaultReportPath, "report `FILE`")
}

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var f statusFlags
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	f.define(fs)
	pos, err := lookup("status").parse(fs, args, stdout, stderr)
	if err != nil {
		return parseResult(err)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "provision status: unexpected argument %q\n", pos[0])
		return exitInvalid
	}
	opts := provision.StatusOptions{Path: f.path, JSON: f.asJSON, Long: f.long, Wait: f.wait, Timeout: f.timeout}
	if !flagSet(fs, "report") {
		// The default: this boot's report, else the first boot's.
		opts.Path, opts.Fallback = statusPaths.run, statusPaths.target
	}
	code, err := provision.PrintStatus(ctx, stdout, opts)
	if err != nil {
		fmt.Fprintf(stderr, "provision status: %v\n", err)
	}
	return code
}

func initCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// Arguments belong to the real init: the initramfs' /init runs
	// `provision init "$@"` with what the kernel gave it. Only a lone
	// --help from a shell (not PID 1) is ours.
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") && os.Getpid() != 1 {
		lookup("init").help(stdout)
		return exitOK
	}
	if err := provision.Init(ctx, stderr, args); err != nil {
		fmt.Fprintf(stderr, "provision init: %v\n", err)
		return exitFailed
	}
	return exitOK
}
