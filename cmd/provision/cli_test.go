package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
)

// runArgs runs the command line and returns its exit status and output.
func runArgs(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// Every way of asking for help prints usage to stdout and exits 0, with
// the double-dash spelling of the flags and an example.
func TestHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"Commands:", "validate", "seed", "provision --dry-run --source", "Exit status"}},
		{[]string{"-h"}, []string{"Commands:"}},
		{[]string{"help"}, []string{"Commands:"}},
		{[]string{"help", "validate"}, []string{"provision validate [--root DIR|IMAGE] [--strict]", "--strict", "Examples:"}},
		{[]string{"help", "report"}, []string{"provision status", "Aliases: report"}},
		{[]string{"run", "--help"}, []string{"--root DIR", "--source", "--dry-run", "Examples:"}},
		{[]string{"--dry-run", "--help"}, []string{"--root DIR"}},
		{[]string{"validate", "--help"}, []string{"--json"}},
		{[]string{"validate", "x", "-h"}, []string{"--json"}},
		{[]string{"status", "--help"}, []string{"--timeout D", "--wait"}},
		{[]string{"status", "-h"}, []string{"--report FILE"}},
		{[]string{"seed", "--help"}, []string{"--format FORMAT", "-o IMAGE", "--no-validate", "ignition"}},
		{[]string{"init", "--help"}, []string{"provision init"}},
		{[]string{"version", "--help"}, []string{"provision --version"}},
		{[]string{"help", "--help"}, []string{"help [COMMAND]"}},
	} {
		code, out, errs := runArgs(c.args...)
		if code != exitOK || errs != "" {
			t.Errorf("%q: exit %d, stderr %q; want 0 and nothing", c.args, code, errs)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%q: output lacks %q:\n%s", c.args, w, out)
			}
		}
		if strings.Contains(out, "\n  -root") || strings.Contains(out, "  -strict") {
			t.Errorf("%q: single-dash long flags in the help:\n%s", c.args, out)
		}
	}
	for _, args := range [][]string{{"help", "nope"}, {"nope"}, {"help", "a", "b"}} {
		if code, _, errs := runArgs(args...); code != exitInvalid || errs == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errs)
		}
	}
}

// Every command has help with at least one example, and every flag a
// description.
func TestCommandTable(t *testing.T) {
	for _, c := range commands {
		if len(c.examples) == 0 || len(c.synopsis) == 0 || c.summary == "" {
			t.Errorf("%s: needs a summary, a synopsis and an example", c.name)
		}
		c.flagSet().VisitAll(func(f *flag.Flag) {
			if f.Usage == "" {
				t.Errorf("%s --%s: no description", c.name, f.Name)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"version"}} {
		code, out, _ := runArgs(args...)
		if code != exitOK || !strings.HasPrefix(out, "provision "+version+"\n") || !strings.Contains(out, "commit: ") || !strings.Contains(out, "go: go1.") {
			t.Errorf("%q: exit %d, output %q", args, code, out)
		}
	}
	if code, _, _ := runArgs("version", "extra"); code != exitInvalid {
		t.Errorf("version extra: exit %d, want 2", code)
	}
	for _, c := range []struct {
		settings []debug.BuildSetting
		want     string
	}{
		{nil, "v1"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}, "abc"},
		{[]debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}, "abc (modified)"},
	} {
		if got := buildCommit(c.settings, "v1"); got != c.want {
			t.Errorf("buildCommit(%v) = %q, want %q", c.settings, got, c.want)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Bool("strict", false, "")
	fs.String("root", "", "")
	for _, c := range []struct {
		args, flags, pos []string
	}{
		{[]string{"a", "--strict", "b"}, []string{"--strict"}, []string{"a", "b"}},
		{[]string{"a", "--root", "r", "b"}, []string{"--root", "r"}, []string{"a", "b"}},
		{[]string{"--root=r", "a"}, []string{"--root=r"}, []string{"a"}},
		{[]string{"a", "--", "--strict", "-"}, nil, []string{"a", "--strict", "-"}},
		{[]string{"--root", "--", "a"}, []string{"--root", "--"}, []string{"a"}}, // "--" as a value
		{[]string{"-", "--strict=false"}, []string{"--strict=false"}, []string{"-"}},
		{[]string{"--bogus", "a"}, []string{"--bogus"}, []string{"a"}},
		{[]string{"a", "--root"}, []string{"--root"}, []string{"a"}}, // value missing: Parse says so
	} {
		flags, pos := splitArgs(fs, c.args)
		if !slices.Equal(flags, c.flags) || !slices.Equal(pos, c.pos) {
			t.Errorf("splitArgs(%q) = %q, %q; want %q, %q", c.args, flags, pos, c.flags, c.pos)
		}
	}
}

// `validate FILE --strict` takes --strict as a flag, not as a path.
func TestFlagsAfterArguments(t *testing.T) {
	dir := t.TempDir()
	ud := filepath.Join(dir, "user-data")
	if err := os.WriteFile(ud, []byte("#cloud-config\nhostname: h1\nbogus_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runArgs("validate", ud)
	if code != exitOK || !strings.Contains(out, "valid") {
		t.Fatalf("validate FILE: exit %d\n%s%s", code, out, errs)
	}
	// An unknown key is a warning, an error under --strict, wherever it is.
	for _, args := range [][]string{{"validate", "--strict", ud}, {"validate", ud, "--strict"}} {
		code, out, errs := runArgs(args...)
		if code != exitInvalid || strings.Contains(out, "valid") || strings.Contains(errs, "--strict:") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, no \"valid\"", args, code, out, errs)
		}
	}
	// After --, a flag-like word is a path.
	code, _, errs = runArgs("validate", ud, "--", "--strict")
	if code != exitInvalid || !strings.Contains(errs, "--strict") {
		t.Errorf("validate FILE -- --strict: exit %d, stderr %q; want --strict read as a path", code, errs)
	}
	// run: flags after --dry-run's value, in any order.
	code, out, errs = runArgs("--source", ud, "--dry-run", "--json")
	if code != exitOK || !strings.Contains(out, `"h1"`) {
		t.Errorf("--source FILE --dry-run --json: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runArgs("run", "--dry-run", ud); code != exitInvalid || !strings.Contains(errs, "--source") {
		t.Errorf("run --dry-run FILE: exit %d, stderr %q; want 2 pointing at --source", code, errs)
	}
	if code, _, errs := runArgs("status", "--json", "extra"); code != exitInvalid || !strings.Contains(errs, "extra") {
		t.Errorf("status --json extra: exit %d, stderr %q", code, errs)
	}
}

// A bare provision, or run without --root, refuses outside an initrd and
// touches nothing; in an initrd it targets /sysroot as before.
func TestRunOutsideInitrd(t *testing.T) {
	defer func(f func() bool) { inInitrd = f }(inInitrd)
	inInitrd = func() bool { return false }
	report := filepath.Join(t.TempDir(), "report.json")
	for _, args := range [][]string{{}, {"run"}, {"--report", report}, {"run", "--force", "--report", report}} {
		code, out, errs := runArgs(args...)
		if code != exitInvalid || !strings.Contains(errs, "not running in an initrd") || !strings.Contains(errs, "--root DIR") || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and the refusal", args, code, out, errs)
		}
	}
	if _, err := os.Stat(report); err == nil {
		t.Error("a refused run wrote a report")
	}

	// In the initrd the run goes on (to /sysroot): a missing --source,
	// resolved before anything else, stops it here.
	inInitrd = func() bool { return true }
	code, _, errs := runArgs("run", "--report", report, "--source", filepath.Join(t.TempDir(), "none"))
	if code != exitInvalid || strings.Contains(errs, "not running in an initrd") || !strings.Contains(errs, "no such file") {
		t.Errorf("in the initrd: exit %d, stderr %q; want the run attempted", code, errs)
	}
}
