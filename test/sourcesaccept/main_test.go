package sourcesaccept

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// shared is a world-readable directory holding the binary and every seed,
// so the binary can run as an unprivileged user when the tests run as root.
var (
	shared       string
	provisionBin string
	buildErr     error
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		dir, err := os.MkdirTemp("", "sourcesaccept-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		shared = dir
		provisionBin = filepath.Join(dir, "provision")
		cmd := exec.Command("go", "build", "-o", provisionBin, "github.com/provision-dev/provision/cmd/provision")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
		return m.Run()
	}()
	os.Exit(code)
}

// workDir is a fresh world-readable directory under shared.
func workDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(shared, "t-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// result of one run of the binary.
type result struct {
	stdout, stderr string
	code           int
	timedOut       bool
}

// nobody is the unprivileged user the binary runs as when we are root:
// reading a seed image must need no privilege (SPEC §7).
const nobody = 65534

// runCLI runs the binary with args, bounded by limit, as nobody when we
// are root, with env added to a minimal environment.
func runCLI(t testing.TB, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	return runAs(t, os.Geteuid() == 0, limit, env, args...)
}

// runAs is runCLI with the choice of dropping root made by the caller.
func runAs(t testing.TB, dropRoot bool, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, provisionBin, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = shared
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=" + os.TempDir(), "HOME=/nonexistent"}, env...)
	if dropRoot {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.timedOut, r.code = true, -1
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running %v: %v", args, err)
	}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("provision %v panicked:\n%s", args, r.stderr)
	}
	return r
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update after checking):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// needTools skips unless every program is installed.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install cloud-image-utils genisoimage dosfstools mtools fdisk)", tool)
		}
	}
}

// run runs a tool and fails the test with its output when it fails.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// copyTree copies testdata/<src> into dst (created) and returns dst.
func copyTree(t testing.TB, src, dst string) string {
	t.Helper()
	src = filepath.Join("testdata", src)
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// chmodAll makes files created by tools readable by nobody.
func chmodAll(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scrub replaces a run's variable parts (paths, ports) for golden files.
func scrub(s string, repl ...string) string {
	for i := 0; i+1 < len(repl); i += 2 {
		s = strings.ReplaceAll(s, repl[i], repl[i+1])
	}
	return s
}

var portRE = regexp.MustCompile(`127\.0\.0\.1:\d+`)
