package process

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lineRecorder keeps every Write separately, so tests can check that each
// Write is exactly one line.
type lineRecorder struct {
	mu     sync.Mutex
	writes []string
	notify chan string
}

func (l *lineRecorder) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.writes = append(l.writes, string(p))
	l.mu.Unlock()
	if l.notify != nil {
		l.notify <- string(p)
	}
	return len(p), nil
}

func (l *lineRecorder) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.writes...)
}

func sh(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/bin/sh", "/usr/bin/sh"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no /bin/sh on this machine")
	return ""
}

func TestExitCodes(t *testing.T) {
	shell := sh(t)
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"false", 1},
		{"exit 255", 255},
	} {
		code, err := Run(context.Background(), Spec{Path: shell, Argv: []string{"sh", "-c", tc.script}})
		if err != nil || code != tc.code {
			t.Errorf("%q: got (%d, %v), want (%d, nil)", tc.script, code, err, tc.code)
		}
	}
}

func TestSignalIsError(t *testing.T) {
	shell := sh(t)
	code, err := Run(context.Background(), Spec{Path: shell, Argv: []string{"sh", "-c", "kill -9 $$"}})
	if err == nil || !strings.Contains(err.Error(), "signal 9") {
		t.Fatalf("got (%d, %v), want a signal error", code, err)
	}
}

func TestStartFailure(t *testing.T) {
	_, err := Run(context.Background(), Spec{Path: "/nonexistent/prog", Argv: []string{"prog"}})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not-exist", err)
	}
}

func TestLinesAndEnvAndDir(t *testing.T) {
	shell := sh(t)
	dir := t.TempDir()
	rec := &lineRecorder{}
	code, err := Run(context.Background(), Spec{
		Path:   shell,
		Argv:   []string{"sh", "-c", `echo "out $FOO"; echo err >&2; pwd; printf 'no newline'`},
		Dir:    dir,
		Env:    []string{"FOO=bar"},
		Output: rec,
	})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v", code, err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	want := []string{"out bar\n", "err\n", real + "\n", "no newline\n"}
	if got := rec.lines(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("writes %q, want %q", got, want)
	}
}

func TestStdin(t *testing.T) {
	shell := sh(t)
	rec := &lineRecorder{}
	_, err := Run(context.Background(), Spec{
		Path: shell, Argv: []string{"sh", "-c", "cat"},
		Stdin: strings.NewReader("one\ntwo\n"), Output: rec,
	})
	if err != nil || strings.Join(rec.lines(), "") != "one\ntwo\n" {
		t.Fatalf("got %q, %v", rec.lines(), err)
	}
}

func TestLongLineIsSplit(t *testing.T) {
	shell := sh(t)
	rec := &lineRecorder{}
	_, err := Run(context.Background(), Spec{
		Path:   shell,
		Argv:   []string{"sh", "-c", "head -c " + strconv.Itoa(MaxLine+10) + " /dev/zero | tr '\\0' x; echo"},
		Output: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rec.lines()
	if len(got) != 2 || len(got[0]) != MaxLine+1 || got[1] != strings.Repeat("x", 10)+"\n" {
		t.Fatalf("got %d writes (first %d bytes)", len(got), len(got[0]))
	}
}

// TestStreaming proves lines arrive while the program still runs: the
// program waits for a file the test creates only after it saw line one.
func TestStreaming(t *testing.T) {
	shell := sh(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	rec := &lineRecorder{notify: make(chan string, 10)}
	done := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), Spec{
			Path:   shell,
			Argv:   []string{"sh", "-c", `echo first; while [ ! -e "$1" ]; do sleep 0.01; done; echo second`, "sh", gate},
			Output: rec,
		})
		done <- err
	}()
	if first := <-rec.notify; first != "first\n" {
		t.Fatalf("first line %q", first)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if second := <-rec.notify; second != "second\n" {
		t.Fatalf("second line %q", second)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTimeoutKillsGroup: on timeout the leader and its background child die.
func TestTimeoutKillsGroup(t *testing.T) {
	shell := sh(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	code, err := Run(context.Background(), Spec{
		Path:      shell,
		Argv:      []string{"sh", "-c", `trap '' TERM; sleep 1000 & echo $! > "$1"; wait`, "sh", pidFile},
		Timeout:   300 * time.Millisecond,
		KillGrace: 100 * time.Millisecond,
	})
	if !errors.Is(err, ErrTimeout) || code != -1 {
		t.Fatalf("got (%d, %v), want timeout", code, err)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	waitGone(t, pid)
}

func TestContextCancel(t *testing.T) {
	shell := sh(t)
	ctx, cancel := context.WithCancel(context.Background())
	rec := &lineRecorder{notify: make(chan string, 1)}
	go func() {
		<-rec.notify
		cancel()
	}()
	_, err := Run(ctx, Spec{Path: shell, Argv: []string{"sh", "-c", "echo go; sleep 1000"}, Output: rec})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestBackgroundChildDoesNotBlock: a child that keeps the output pipe open
// must not keep Run waiting.
func TestBackgroundChildDoesNotBlock(t *testing.T) {
	shell := sh(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	var out bytes.Buffer
	code, err := Run(context.Background(), Spec{
		Path:    shell,
		Argv:    []string{"sh", "-c", `sleep 1000 & echo $! > "$1"; echo bye`, "sh", pidFile},
		Output:  &out,
		Timeout: time.Minute,
	})
	if err != nil || code != 0 || out.String() != "bye\n" {
		t.Fatalf("got (%d, %v, %q)", code, err, out.String())
	}
	data, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitGone waits until pid no longer runs (a zombie counts as gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 500; i++ {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d still runs", pid)
}

func TestEmptyCommand(t *testing.T) {
	if _, err := Run(context.Background(), Spec{}); err == nil {
		t.Fatal("want error")
	}
}
