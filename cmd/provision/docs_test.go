package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The man page source and the completions are written by hand; these tests
// hold them to the command table, so a new command or flag cannot be
// forgotten in them.

const (
	manSource  = "../../doc/provision.8.md"
	completion = "../../dist/completions/"
)

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestManPageListsEveryCommandAndFlag(t *testing.T) {
	page := readDoc(t, manSource)
	for _, c := range commands {
		for _, name := range append([]string{c.name}, c.aliases...) {
			if !strings.Contains(page, "`"+name+"`") {
				t.Errorf("%s does not name the command %q", manSource, name)
			}
		}
		c.flagSet().VisitAll(func(f *flag.Flag) {
			// As an OPTIONS entry, spelled as --help prints it.
			name, _ := flagHelp(f)
			if !strings.Contains(page, "\n`"+name+"`\n: ") {
				t.Errorf("%s: no entry \"`%s`\" for %s's flag", manSource, name, c.name)
			}
		})
	}
}

func TestCompletionsListEveryCommandAndFlag(t *testing.T) {
	for _, file := range []string{"provision.bash", "_provision", "provision.fish"} {
		text := readDoc(t, completion+file)
		fish := strings.HasSuffix(file, ".fish")
		for _, c := range commands {
			for _, name := range append([]string{c.name}, c.aliases...) {
				if !strings.Contains(text, name) {
					t.Errorf("%s lacks the command %q", file, name)
				}
			}
			c.flagSet().VisitAll(func(f *flag.Flag) {
				want := "--" + f.Name
				switch {
				case fish && len(f.Name) == 1:
					want = "-s " + f.Name
				case fish:
					want = "-l " + f.Name
				case len(f.Name) == 1:
					want = "-" + f.Name
				}
				if !strings.Contains(text, want) {
					t.Errorf("%s lacks %s's flag %q", file, c.name, want)
				}
			})
		}
	}
}

// The completion scripts load in their shells; bash's completes commands,
// flags and --format's values.
func TestCompletionsLoad(t *testing.T) {
	abs := func(f string) string {
		p, err := filepath.Abs(completion + f)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	shell := func(t *testing.T, name string, args ...string) string {
		t.Helper()
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (apt-get install %s): its completion is not checked", name, name)
		}
		cmd := exec.Command(name, args...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "HOME="+cmd.Dir) // no user rc files
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	t.Run("bash", func(t *testing.T) {
		script := `source "$1" || exit 1
complete -p provision
c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _provision; echo "${COMPREPLY[*]}"; }
c provision va
c provision seed --format ''
c provision validate x --st
c provision status --w
c provision --dr`
		out := shell(t, "bash", "-c", script, "bash", abs("provision.bash"))
		want := "complete -F _provision provision\nvalidate\nnocloud configdrive combustion ignition\n--strict\n--wait\n--dry-run\n"
		if out != want {
			t.Errorf("bash completion printed\n%s\nwant\n%s", out, want)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		out := shell(t, "zsh", "-f", "-c", `autoload -U compinit; compinit -u -D; source "$1" && print -r -- ${_comps[provision]}`, "zsh", abs("_provision"))
		if strings.TrimSpace(out) != "_provision" {
			t.Errorf("zsh: provision completes with %q, want _provision", out)
		}
	})
	t.Run("fish", func(t *testing.T) {
		out := shell(t, "fish", "--no-config", "-c", `source $argv[1]; complete -C "provision seed --format "`, abs("provision.fish"))
		for _, f := range []string{"nocloud", "configdrive", "combustion", "ignition"} {
			if !strings.Contains(out, f) {
				t.Errorf("fish completes --format with\n%s\nwithout %s", out, f)
			}
		}
	})
}
