// Package rootfstest is test support for module appliers: it builds a
// target tree to plan and apply against, and compares output with golden
// files under testdata/.
//
// Importing it defines the -update flag (rewrite golden files instead of
// comparing); a test package that imports it must not define its own.
package rootfstest

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
)

// Update is the -update flag: Golden writes what it got instead of
// comparing.
var Update = flag.Bool("update", false, "rewrite golden files")

// Golden compares got with testdata/name, or writes it there with -update.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *Update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update)", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// NewRoot builds a target tree in a fresh temporary directory from
// path -> content: a content starting with "->" makes a symlink to the
// rest, a path ending in "/" a directory, anything else a file (0644).
func NewRoot(t testing.TB, files map[string]string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		host := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch target, link := strings.CutPrefix(c, "->"); {
		case link:
			err = os.Symlink(target, host)
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(host, 0o755)
		default:
			err = os.WriteFile(host, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Apply applies steps in order to root, failing the test at the first
// error, and returns what they wrote to the console.
func Apply(t testing.TB, root *rootfs.Root, steps []modules.Step) string {
	t.Helper()
	var console bytes.Buffer
	env := &modules.Env{Root: root, Console: &console}
	for _, s := range steps {
		if err := s.Apply(context.Background(), env); err != nil {
			t.Fatalf("apply %s: %v", s, err)
		}
	}
	return console.String()
}

// PlanText is a plan as text, a step a line: what golden plan files hold.
func PlanText(steps []modules.Step) []byte {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.String() + "\n")
	}
	return []byte(b.String())
}
