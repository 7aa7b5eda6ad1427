// Package process runs one external program the way provisioning needs it:
// optionally chrooted into the target, in its own process group, with a clean
// environment, a timeout that kills the whole group, and its combined
// stdout+stderr delivered line by line as the lines are written.
//
// It is shared by the chroot executor (provision/chroot) and by the
// Combustion `--prepare` run in the initrd, which has no chroot.
package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultTimeout is provision.script_timeout's default (SPEC §5).
const DefaultTimeout = 30 * time.Minute

// DefaultKillGrace is how long a timed-out group has between SIGTERM and SIGKILL.
const DefaultKillGrace = 5 * time.Second

// MaxLine bounds one delivered line; a longer line is delivered in pieces so a
// program printing megabytes without a newline cannot exhaust memory.
const MaxLine = 64 << 10

// drainGrace is how long output is still read after the program exited. A
// background child that inherited the pipe keeps it open forever; we must not
// wait for it, but a program's last lines are usually still in the pipe.
const drainGrace = 200 * time.Millisecond

// Spec describes one program run.
type Spec struct {
	// Path is the program to execute, as seen after the chroot (if any). It is
	// not looked up in PATH: the caller resolves it (see LookPath).
	Path string
	Argv []string // Argv[0] included
	// Chroot, when set, is the host directory that becomes the program's root.
	Chroot string
	// Dir is the working directory, inside Chroot when that is set.
	Dir   string
	Env   []string
	Stdin io.Reader // nil: /dev/null
	// Output receives every line of stdout and stderr (with its "\n"), one
	// Write per line. nil discards.
	Output io.Writer
	// Timeout bounds the run (DefaultTimeout when zero; negative: none).
	Timeout   time.Duration
	KillGrace time.Duration // DefaultKillGrace when zero
}

// ErrTimeout is wrapped by the error of a run that exceeded its timeout.
var ErrTimeout = errors.New("timed out")

// Run starts the program, streams its output, and waits for it. A normal exit
// returns its status with a nil error, whatever the status. A program killed
// by a signal, a timeout, a cancelled ctx or a failure to start returns an
// error (and exit code -1).
func Run(ctx context.Context, s Spec) (int, error) {
	if s.Path == "" || len(s.Argv) == 0 {
		return -1, errors.New("process: empty command")
	}
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	grace := s.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer pr.Close()
	stdin, closeStdin, err := stdinFile(s.Stdin)
	if err != nil {
		pw.Close()
		return -1, err
	}

	attr := &os.ProcAttr{
		Dir:   s.Dir,
		Env:   s.Env,
		Files: []*os.File{stdin, pw, pw},
		Sys: &syscall.SysProcAttr{
			Chroot: s.Chroot,
			// Its own group, so a timeout kills the children too.
			Setpgid: true,
			// If provision itself dies, do not leave scripts running in a
			// tree that is about to be unmounted.
			Pdeathsig: syscall.SIGKILL,
		},
	}
	if s.Env == nil {
		attr.Env = []string{}
	}
	proc, err := os.StartProcess(s.Path, s.Argv, attr)
	pw.Close()
	closeStdin()
	if err != nil {
		return -1, fmt.Errorf("starting %s: %w", s.Path, err)
	}

	var exited atomic.Bool
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		copyLines(s.Output, &drainReader{f: pr, exited: &exited})
	}()

	waited := make(chan waitResult, 1)
	go func() {
		st, err := proc.Wait()
		waited <- waitResult{st, err}
	}()

	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	var res waitResult
	var cause error
	select {
	case res = <-waited:
	case <-timer:
		cause = fmt.Errorf("%w after %s", ErrTimeout, timeout)
		res = killGroup(proc.Pid, grace, waited)
	case <-ctx.Done():
		cause = ctx.Err()
		res = killGroup(proc.Pid, grace, waited)
	}

	// Let the reader take what is left in the pipe, but do not wait for
	// background children holding it open.
	exited.Store(true)
	_ = pr.SetReadDeadline(time.Now().Add(drainGrace))
	<-lines

	if res.err != nil {
		return -1, res.err
	}
	if cause != nil {
		return -1, cause
	}
	ws, _ := res.state.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		return -1, fmt.Errorf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return res.state.ExitCode(), nil
}

type waitResult struct {
	state *os.ProcessState
	err   error
}

// killGroup sends SIGTERM to the group, then SIGKILL after grace, and returns
// the leader's wait result.
func killGroup(pgid int, grace time.Duration, waited <-chan waitResult) waitResult {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case r := <-waited:
		// The leader is gone; its children may not be.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return r
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return <-waited
	}
}

func stdinFile(r io.Reader) (*os.File, func(), error) {
	if r == nil {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}
	if f, ok := r.(*os.File); ok {
		return f, func() {}, nil
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	go func() {
		_, _ = io.Copy(pw, r)
		pw.Close()
	}()
	return pr, func() { pr.Close() }, nil
}

// drainReader stops reading once the program exited and the pipe stayed
// silent for drainGrace; every read after the exit renews the deadline, so a
// slow Output does not lose lines that are already in the pipe.
type drainReader struct {
	f      *os.File
	exited *atomic.Bool
}

func (d *drainReader) Read(p []byte) (int, error) {
	if d.exited.Load() {
		_ = d.f.SetReadDeadline(time.Now().Add(drainGrace))
	}
	return d.f.Read(p)
}

// copyLines delivers r to w one line per Write until EOF or a read error
// (including the drain deadline).
func copyLines(w io.Writer, r io.Reader) {
	if w == nil {
		w = io.Discard
	}
	br := bufio.NewReaderSize(r, MaxLine)
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			// Copy: the slice points into the reader's buffer. A last
			// line without a newline (or an over-long piece) gets one, so
			// every Write is one whole line.
			line := make([]byte, len(chunk), len(chunk)+1)
			copy(line, chunk)
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			_, _ = w.Write(line)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}
