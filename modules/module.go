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
}

// String is the plan line: "users: create user alice (uid 1000) [nocloud:user-data:3:5]".
func (s Step) String() string {
	line := fmt.Sprintf("%s: %s %s", s.Module, s.Action, s.Target)
	if s.Detail != "" {
		line += " (" + s.Detail + ")"
	}
	return line + " [" + s.Origin.String() + "]"
}

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
}

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
