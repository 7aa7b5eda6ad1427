// Package testbin is what the test suites that run the built command share:
// the repository's root, the static binary built from it, and the
// difference between two pictures of a tree.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Build builds the static provision command to out.
func Build(out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/provision")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}

// Diff lists, sorted, what differs between two pictures of a tree (path to
// a description of the entry): added, changed and removed paths.
func Diff(before, after map[string]string) []string {
	var out []string
	for k, v := range after {
		if b, ok := before[k]; !ok {
			out = append(out, "added "+k+": "+v)
		} else if b != v {
			out = append(out, "changed "+k+": "+b+" => "+v)
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		}
	}
	sort.Strings(out)
	return out
}
