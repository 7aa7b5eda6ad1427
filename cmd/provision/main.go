// Command provision is the first-boot provisioning agent. This file holds the
// command line only: flags, subcommands and exit codes; the engine is in
// package provision.
package main

import (
	"context"
	"encoding/json"
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

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  provision [run] [--root DIR] [--source PATH|URL]... [--force] [--strict]
  provision --dry-run [--source PATH|URL]... [--root DIR] [--json] [--strict]
  provision validate [--strict] [--json] FILE|DIR|IMAGE...
  provision status [--json] [--wait] [--timeout D]
  provision init
  provision seed --format nocloud|configdrive|combustion [--iso|--vfat] -o IMAGE INPUTS...
  provision version
`)
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "run":
		return runCmd(ctx, args, stdout, stderr)
	case "validate":
		return validateCmd(ctx, args, stdout, stderr)
	case "status", "report":
		return statusCmd(ctx, args, stdout, stderr)
	case "init":
		return initCmd(ctx, args, stderr)
	case "seed":
		return seedCmd(args, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "provision", version)
		return exitOK
	case "help", "-h", "--help":
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "provision: unknown command %q\n", cmd)
	usage(stderr)
	return exitInvalid
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var srcs multiFlag
	fs.Var(&srcs, "source", "configuration source: directory, image file, block device, URL, or ec2:URL / openstack:URL / nocloud:URL (repeatable)")
	root := fs.String("root", "", "target root (default /sysroot for a real run; none for --dry-run)")
	dry := fs.Bool("dry-run", false, "print the plan; change nothing")
	asJSON := fs.Bool("json", false, "print the plan or result as JSON")
	strict := fs.Bool("strict", false, "treat warnings (unknown keys...) as errors")
	force := fs.Bool("force", false, "provision even when the first-boot predicate says no")
	report := fs.String("report", provision.DefaultReportPath, "where to write the run report")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "provision: unexpected argument %q\n", fs.Arg(0))
		return exitInvalid
	}
	if *root == "" && !*dry {
		*root = "/sysroot"
	}
	opts, err := provision.SystemOptions(ctx, provision.SystemConfig{
		Root:       *root,
		SourceSpec: srcs,
		DryRun:     *dry,
		Strict:     *strict,
		Force:      *force,
		Console:    stderr,
		InInitrd:   provision.InInitrd(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "provision: %v\n", err)
		return exitInvalid
	}
	res := provision.Run(ctx, opts)
	if !*dry {
		if err := provision.WriteReport(res, *report, *root); err != nil {
			fmt.Fprintf(stderr, "provision: writing the report: %v\n", err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else if *dry {
		printPlan(stdout, res)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return exitCode(res, stderr)
}

func printPlan(w io.Writer, res *provision.Result) {
	for _, s := range res.Sources {
		fmt.Fprintf(w, "# source %s: %d document(s)\n", s.Name, s.Documents)
	}
	if res.Status != provision.StatusPlanned {
		return
	}
	for _, l := range res.Target {
		fmt.Fprintf(w, "# target: %s\n", l)
	}
	if len(res.Plan) == 0 {
		fmt.Fprintln(w, "# nothing would change")
	}
	for _, s := range res.Plan {
		fmt.Fprintln(w, s.String())
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

func validateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	strict := fs.Bool("strict", false, "treat warnings as errors")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "provision validate: give at least one FILE, DIR or IMAGE")
		return exitInvalid
	}
	code := exitOK
	for _, path := range fs.Args() {
		opts, err := provision.SystemOptions(ctx, provision.SystemConfig{SourceSpec: []string{path}, DryRun: true, Strict: *strict})
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, err)
			code = exitInvalid
			continue
		}
		res := provision.Run(ctx, opts)
		if *asJSON {
			json.NewEncoder(stdout).Encode(res)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(stderr, "warning: %s\n", w)
		}
		switch {
		case res.Err == nil && res.Status == provision.StatusNothing:
			// validate was given something to check and found nothing.
			fmt.Fprintf(stderr, "%s: no configuration found: %s\n", path, res.Reason)
			code = max(code, exitInvalid)
		case res.Err != nil:
			for _, line := range strings.Split(res.Err.Error(), "\n") {
				fmt.Fprintln(stderr, strings.TrimPrefix(line, provision.ErrInvalid.Error()+": "))
			}
			if errors.Is(res.Err, provision.ErrInvalid) {
				code = max(code, exitInvalid)
			} else {
				code = max(code, exitFailed)
			}
		case !*asJSON:
			fmt.Fprintf(stdout, "%s: valid (%d steps)\n", path, len(res.Plan))
		}
	}
	return code
}

func statusCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	wait := fs.Bool("wait", false, "wait until the run has finished")
	timeout := fs.Duration("timeout", 10*time.Minute, "with --wait: give up after this long")
	path := fs.String("report", provision.DefaultReportPath, "report file")
	if err := fs.Parse(args); err != nil {
		return exitInvalid
	}
	code, err := provision.PrintStatus(ctx, stdout, *path, *asJSON, *wait, *timeout)
	if err != nil {
		fmt.Fprintf(stderr, "provision status: %v\n", err)
	}
	return code
}

func initCmd(ctx context.Context, args []string, stderr io.Writer) int {
	// Arguments belong to the real init: the initramfs' /init runs
	// `provision init "$@"` with what the kernel gave it.
	if err := provision.Init(ctx, stderr, args); err != nil {
		fmt.Fprintf(stderr, "provision init: %v\n", err)
		return exitFailed
	}
	return exitOK
}
