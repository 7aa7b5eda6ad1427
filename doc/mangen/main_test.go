package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestConvert(t *testing.T) {
	src := "# tool(8) -- does `x-y` things\n\n## Description\n\nOne line,\n.starts with a dot \\ and **bold** and *it*.\n\n" +
		"`--flag ARG`\n: What it does,\n  on two lines.\n\n- a bullet\n1. first\n\n    literal --x\n\n    .second\n"
	got, err := Convert(src, "v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		".TH TOOL 8 \"\" \"tool v1\" \"System Manager's Manual\"\n",
		".SH NAME\ntool \\- does \\fB\\%x\\-y\\fR things\n",
		".SH DESCRIPTION\n.PP\nOne line,\n\\&.starts with a dot \\e and \\fBbold\\fR and \\fIit\\fR.\n",
		".TP\n\\fB\\%\\-\\-flag ARG\\fR\nWhat it does,\non two lines.\n",
		".IP \\(bu 2\na bullet\n.IP 1. 4\nfirst\n",
		".nf\nliteral \\-\\-x\n\n\\&.second\n.fi\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"no title\n", "# t(8) -- d\n# again\n", "# t(8) -- d\n\n: orphan\n"} {
		if _, err := Convert(bad, ""); err == nil {
			t.Errorf("Convert(%q) succeeded", bad)
		}
	}
}

// The shipped pages render without a single warning, in groff and in man.
func TestPagesRender(t *testing.T) {
	pages, _ := filepath.Glob("../provision.[0-9].md")
	if len(pages) != 2 {
		t.Fatalf("man page sources: %v, want provision.7.md and provision.8.md", pages)
	}
	for _, src := range pages {
		out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".md"))
		if err := convertFile(src, out, "test"); err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(out)+"/groff", func(t *testing.T) {
			quiet(t, "groff-base", "groff", "-man", "-ww", "-z", out)
		})
		t.Run(filepath.Base(out)+"/man", func(t *testing.T) {
			quiet(t, "man-db", "man", "--warnings", "-l", out)
		})
	}
}

// quiet runs a formatter and fails on any message from it.
func quiet(t *testing.T, pkg, name string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (apt-get install %s): the page is not checked with it", name, pkg)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=", "PAGER=cat", "MANPAGER=cat")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = new(bytes.Buffer), &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
}

// notParameters are provision.* strings in the code that are file names.
var notParameters = map[string]bool{"provision.log": true, "provision.service": true}

// Every provision.* kernel parameter the code reads is in provision(7) and
// in the README, and so are the other words of the command line it acts on.
func TestKernelParametersDocumented(t *testing.T) {
	params := map[string]bool{}
	re := regexp.MustCompile(`"(provision\.[a-z_]+)=?"`)
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "test" || d.Name() == "doc" || strings.HasPrefix(d.Name(), ".") && p != "../..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if !notParameters[m[1]] {
				params[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The grep must find what the code is known to read, or it is broken.
	for _, p := range []string{"provision.url", "provision.firstboot", "provision.on_failure", "provision.device_timeout", "provision.script_timeout", "provision.root_timeout"} {
		if !params[p] {
			t.Errorf("the scan of the code did not find %s", p)
		}
	}
	for _, p := range []string{"provision=disabled", "cloud-init=disabled", "combustion.url", "ignition.config.url", "combustion.firstboot", "ignition.firstboot", "ds=nocloud", "ds=configdrive", "rootdelay"} {
		params[p] = true
	}
	for _, doc := range []string{"../provision.7.md", "../../README.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for p := range params {
			if !regexp.MustCompile("`" + regexp.QuoteMeta(p) + "[=`\\[]").Match(b) {
				t.Errorf("%s does not list the kernel parameter %s", doc, p)
			}
		}
	}
}
