package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one subcommand. The table below drives dispatch and every
// --help; the man page source (doc/provision.8.md) and the completions in
// dist/completions are checked against it by tests, so a flag added here
// and forgotten there fails the build.
type command struct {
	name     string
	aliases  []string
	summary  string    // one line, for the command list
	synopsis []string  // usage lines, without the leading "provision "
	about    string    // a paragraph after the synopsis
	examples []example // one or two, shown by --help
	// flags defines the command's flags on fs; nil for a command without
	// flags of its own (init hands its arguments to the real init).
	flags func(fs *flag.FlagSet)
}

type example struct{ cmd, what string }

var commands = []*command{
	{
		name:    "run",
		summary: "provision the target root (the default command; the boot job)",
		synopsis: []string{
			"[run] [--root DIR] [--source PATH|URL]... [--force] [--strict] [--report FILE]",
			"--dry-run [--source PATH|URL]... [--root DIR] [--json] [--strict]",
		},
		about: `Finds the configuration sources, decides whether this is a first boot, and
applies users, SSH keys, files, settings, units and scripts in a new btrfs
snapshot that becomes the default subvolume, or is thrown away on failure.
Without --root the target is /sysroot, and only inside an initrd
(/etc/initrd-release): elsewhere give --root DIR, or --dry-run.`,
		examples: []example{
			{"provision --dry-run --source ./seed", "print what the NoCloud seed in ./seed would change"},
			{"provision --diff --root /mnt --source seed.iso", "show every file change and script against a mounted image (as root)"},
			{"provision run --root /mnt --source seed.iso", "provision the tree mounted at /mnt from an image"},
		},
		flags: func(fs *flag.FlagSet) { new(runFlags).define(fs) },
	},
	{
		name:     "validate",
		summary:  "check configuration files, directories or images offline",
		synopsis: []string{"validate [--root DIR|IMAGE] [--strict] [--json] FILE|DIR|IMAGE..."},
		about: `Parses every document of each argument and plans the run, against --root
when given, else against a minimal MicroOS-like base system; prints "valid"
or every error of every document (parse, key and plan errors together,
sorted by file, line and column). Without --root, what only the image can
tell (units the config enables, accounts it refers to) is a warning.`,
		examples: []example{
			{"provision validate user-data", "check a cloud-config file"},
			{"provision validate seed.iso --strict", "fail on warnings (unknown keys...) too"},
			{"provision validate --root microos.raw config.ign", "check against the image's units and accounts (as root)"},
		},
		flags: func(fs *flag.FlagSet) { new(validateFlags).define(fs) },
	},
	{
		name:     "status",
		aliases:  []string{"report"},
		summary:  "print the last run's report",
		synopsis: []string{"status [--long] [--json] [--wait] [--timeout D] [--report FILE]"},
		about: `Prints the last run's status, as cloud-init status does: this boot's report
(/run/provision/report.json), else the first boot's, kept in
/var/log/provision/report.json. With no report at all the status is
"not run" (exit 0). --long adds the result, times, errors, modules and the
output of failed steps. Exit status 1 when the run failed.`,
		examples: []example{
			{"provision status --long", "what the last run did, and the output of a failed script"},
			{"provision status --wait --json", "wait for the boot's run, then print its report as JSON"},
		},
		flags: func(fs *flag.FlagSet) { new(statusFlags).define(fs) },
	},
	{
		name:    "seed",
		summary: "build a NoCloud, ConfigDrive, Combustion or Ignition medium",
		synopsis: []string{
			"seed --format nocloud|configdrive|combustion|ignition [--iso|--vfat] -o IMAGE INPUTS...",
		},
		about: `Writes an ISO9660 or FAT image, without root, that provision (and
cloud-init, Combustion or Ignition) reads back. What is packed is validated
first, as provision validate does (--no-validate skips). INPUTS:
  nocloud:     USER-DATA [META-DATA]                    (label cidata)
  configdrive: [USER-DATA]                              (label config-2)
  combustion:  DIR holding script | SCRIPT              (label combustion)
  ignition:    CONFIG.ign | DIR holding ignition/config.ign (label ignition)`,
		examples: []example{
			{"provision seed --format nocloud -o seed.iso user-data", "a NoCloud ISO with generated meta-data"},
			{"provision seed --format ignition -o ignition.img config.ign", "an Ignition USB image (ignition/config.ign)"},
		},
		flags: func(fs *flag.FlagSet) { new(seedFlags).define(fs) },
	},
	{
		name:     "schema",
		summary:  "print the JSON Schema of the cloud-config keys, for editors",
		synopsis: []string{"schema"},
		about: `Prints a JSON Schema (draft-07) of the cloud-config keys provision reads,
with the types its parser accepts, made from the parser's own key table.
Editors check user-data with it: point yaml-language-server (VS Code's YAML
extension...) at it with a first line
  # yaml-language-server: $schema=./cloud-config.schema.json
Keys cloud-init knows but provision ignores are marked "deprecated";
unknown keys are allowed, as they draw only a warning.`,
		examples: []example{
			{"provision schema > cloud-config.schema.json", "save the schema for an editor"},
		},
	},
	{
		name:     "init",
		summary:  "PID 1 helper of a minimal initramfs",
		synopsis: []string{"init [INIT-ARGUMENTS...]"},
		about: `Run as /init of a minimal initramfs: mounts the root, provisions it and
switches root to the real init, which gets the arguments.`,
		examples: []example{
			{"exec /bin/provision init \"$@\"", "the whole /init script of such an initramfs"},
		},
	},
	{
		name:     "version",
		summary:  "print the version, commit and Go version",
		synopsis: []string{"version", "--version"},
		examples: []example{{"provision --version", ""}},
	},
	{
		name:     "help",
		summary:  "print help for provision or a command",
		synopsis: []string{"help [COMMAND]", "COMMAND --help"},
		examples: []example{{"provision help seed", "the flags of provision seed"}},
	},
}

// lookup finds a command by name or alias.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

// flagSet returns c's flags on a fresh set, for help and for the tests that
// compare them with the man page and the completions.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

// usage is the overview that provision --help prints.
func usage(w io.Writer) {
	fmt.Fprint(w, "provision: first-boot provisioning agent for immutable Linux\n\nUsage:\n")
	for _, c := range commands {
		for _, s := range c.synopsis {
			fmt.Fprintf(w, "  provision %s\n", s)
		}
	}
	fmt.Fprint(w, "\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Examples:
  provision --dry-run --source ./seed
  provision validate user-data --strict

Run 'provision help COMMAND' for a command's flags; see provision(8) and,
for kernel parameters and sources, provision(7).
Exit status: 0 done or nothing to do, 1 the run failed (rolled back),
2 invalid input or usage.
`)
}

// help prints c's usage: synopsis, description, flags, examples.
func (c *command) help(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	for _, s := range c.synopsis {
		fmt.Fprintf(w, "  provision %s\n", s)
	}
	if len(c.aliases) > 0 {
		fmt.Fprintf(w, "Aliases: %s\n", strings.Join(c.aliases, ", "))
	}
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", c.about)
	}
	fmt.Fprint(w, "\nFlags:\n")
	c.flagSet().VisitAll(func(f *flag.Flag) {
		name, text := flagHelp(f)
		fmt.Fprintf(w, "  %s\n      %s\n", name, text)
	})
	fmt.Fprint(w, "  -h, --help\n      print this help\n")
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e.cmd)
			if e.what != "" {
				fmt.Fprintf(w, "      %s\n", e.what)
			}
		}
	}
}

// flagHelp returns a flag as it is typed ("--root DIR", "-o IMAGE") and its
// description with the default, in the spelling the documentation uses:
// Go's own PrintDefaults writes "-root", which nobody types.
func flagHelp(f *flag.Flag) (name, text string) {
	arg, text := flag.UnquoteUsage(f)
	name = "--" + f.Name
	if len(f.Name) == 1 {
		name = "-" + f.Name
	}
	if arg != "" {
		name += " " + arg
	}
	if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "[]" {
		text += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	return name, text
}

// isBoolFlag reports whether f takes no value (--strict, not --strict=x).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// errUsage is returned when the arguments were wrong; the message has
// already been printed.
var errUsage = errors.New("usage error")

// parse parses args with c's flag set fs, accepting flags before and after
// positional arguments (`validate FILE --strict`); `--` ends the flags. It
// returns the positional arguments. --help prints c's help to stdout and
// returns flag.ErrHelp; a bad flag prints the error and a hint to stderr
// and returns errUsage.
func (c *command) parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // help is ours (to stdout), errors get a hint below
	flags, pos := splitArgs(fs, args)
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.help(stdout)
			return nil, flag.ErrHelp
		}
		fmt.Fprintf(stderr, "Run 'provision help %s' for usage.\n", c.name)
		return nil, errUsage
	}
	return pos, nil
}

// splitArgs separates flags (with their values) from positional arguments,
// using fs to know which flags take a value. Go's flag package stops at
// the first positional argument; people do not.
func splitArgs(fs *flag.FlagSet, args []string) (flags, pos []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(pos, args[i+1:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		// An unknown flag stays alone: fs.Parse reports it.
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, pos
}

// parseResult turns parse's error into an exit status.
func parseResult(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitInvalid
}
