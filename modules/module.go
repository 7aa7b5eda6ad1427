// Package modules holds what every applier shares: a Step is one planned
// operation on the target root, printed by --dry-run and applied by run.
// The appliers live in the subpackages (users, ssh, files, system, ...).
package modules

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Step is one operation. Plans are lists of steps in apply order.
type Step struct {
	Module string        `json:"module"` // "users", "files", ...
	Action string        `json:"action"` // "create user", "write", "set hostname"
	Target string        `json:"target"` // user name, path, unit name
	Detail string        `json:"detail,omitempty"`
	Origin config.Origin `json:"-"`
	// Apply performs the step. It is idempotent and confined to env.Root.
	Apply func(ctx context.Context, env *Env) error `json:"-"`
	// Batch names state that consecutive steps share through Env (see
	// Env.Batch): the account databases are locked, read and written once
	// for a run of users steps instead of once per step. "" is none.
	Batch string `json:"-"`
	// Writes are paths other than Target that applying the step may
	// change: the engine has the journal keep them all, with one flush,
	// before the first step (rootfs.Root.PreserveAll).
	Writes []string `json:"-"`
	// Prefetch, when set, starts work Apply will need that nothing the
	// transaction writes can change (a plain-text password's hash, a host
	// key: milliseconds of CPU or more) on a goroutine of its own (see
	// Ahead). The engine calls it for every step once the plan stands, so
	// the work overlaps the journal's flush and the steps before; Apply
	// waits for it, or does the work itself when Prefetch was never called
	// (a dry run, a test, a tool).
	Prefetch func() `json:"-"`
}

// String is the plan line: "users: create user alice (uid 1000) [nocloud:user-data:3:5]".
// Its parts come from the config (paths, names, origins), so they are
// escaped: a newline in a path must not start a line of its own.
func (s Step) String() string {
	line := fmt.Sprintf("%s: %s %s", Printable(s.Module), Printable(s.Action), Printable(s.Target))
	if s.Detail != "" {
		line += " (" + Printable(s.Detail) + ")"
	}
	return line + " [" + Printable(s.Origin.String()) + "]"
}

// Printable escapes what would let a string from a config or a target
// break or fake a line of the console, the journal or the report text
// (rootfs.Printable, the one implementation: rootfs is below every package
// that prints).
var Printable = rootfs.Printable

// PrintableLines is rootfs.PrintableLines: for a message that may rightly
// span lines, each line escaped and the later ones indented.
var PrintableLines = rootfs.PrintableLines

// Env is what a step applies against. External effects sit behind it so unit
// tests run unprivileged.
type Env struct {
	Root *rootfs.Root
	// Console receives human-readable progress and command output lines.
	Console io.Writer
	// Exec runs a command inside the target (chroot) when the engine provides
	// one; nil in dry runs and unit tests of modules that never execute.
	Exec Executor
	// Secret, when set, registers a value made during the run (a random
	// password) that the console may show once but reports must mask.
	Secret func(value string)

	// batches are the open batches' states, in the order they opened.
	batches []openBatch
}

// BatchState is what a run of steps of one batch shares: Flush writes it
// out once they are done, Release gives it up unwritten (the run failed).
type BatchState interface {
	Flush() error
	Release()
}

type openBatch struct {
	name  string
	state BatchState
}

// Batch returns the open state of batch name, or nil.
func (e *Env) Batch(name string) BatchState {
	for _, b := range e.batches {
		if b.name == name {
			return b.state
		}
	}
	return nil
}

// OpenBatch records the state of batch name, for the following steps of
// the batch and for EndBatches.
func (e *Env) OpenBatch(name string, s BatchState) {
	e.batches = append(e.batches, openBatch{name, s})
}

// EndBatches flushes every open batch but keep (the batch of the step
// about to run), in the order they opened: whoever applies steps calls it
// before each step and, with "", after the last one.
func (e *Env) EndBatches(keep string) error {
	var errs []error
	rest := e.batches[:0]
	for _, b := range e.batches {
		if b.name == keep && keep != "" {
			rest = append(rest, b)
			continue
		}
		if err := b.state.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", b.name, err))
		}
	}
	e.batches = rest
	return errors.Join(errs...)
}

// ReleaseBatches gives up every open batch without writing it.
func (e *Env) ReleaseBatches() {
	for _, b := range e.batches {
		b.state.Release()
	}
	e.batches = nil
}

// ApplyAll applies steps in order on env, ending batches as they end: what
// the engine does, for dry-run simulations and tests.
func ApplyAll(ctx context.Context, env *Env, steps []Step) error {
	for _, s := range steps {
		if err := env.EndBatches(s.Batch); err != nil {
			env.ReleaseBatches()
			return err
		}
		if err := s.Apply(ctx, env); err != nil {
			if _, ok := err.(*NonFatalError); ok {
				continue
			}
			env.ReleaseBatches()
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return env.EndBatches("")
}

// NonFatalError is a step failure the configuration asked to tolerate (a
// program marked non-fatal that exited non-zero): whoever applies steps
// reports it as a warning and goes on to commit. Only the step itself
// decides this; an error that merely wraps one is still fatal.
type NonFatalError struct {
	Err error
}

func (e *NonFatalError) Error() string { return e.Err.Error() }
func (e *NonFatalError) Unwrap() error { return e.Err }

// ErrNoExecutor is wrapped by a step that must run a program in the
// target when Env has no Exec (a dry run).
var ErrNoExecutor = errors.New("no executor for the target (dry run?)")

// Executor runs a program inside the target root.
type Executor interface {
	Run(ctx context.Context, cmd Command) (exitCode int, err error)
}

// Command is a program run in the target. Output lines are streamed to Output.
type Command struct {
	Argv   []string
	Dir    string // inside the target
	Env    []string
	Stdin  io.Reader
	Output io.Writer
}
