package provision

import (
	"context"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/report"
)

// PanicPointEnv is the environment variable crash tests set to make a run
// panic inside the transaction: "step:MODULE" panics in the first step of
// that module, as a bug in it would. For tests only, like the kill points
// of package snapshot.
const PanicPointEnv = "PROVISION_TEST_PANIC"

// panicFrames is how many of our own frames a panic's error keeps: enough
// to find the bug, short enough for a console line and the report.
const panicFrames = 8

// panicError is a recovered panic as an error: its value and a short
// stack, so the report says where it happened.
type panicError struct {
	value any
	stack []string
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v [at %s]", e.value, strings.Join(e.stack, " < "))
}

// Unwrap keeps a panic with an error value (a nil map, an index out of
// range: runtime.Error) comparable with errors.Is/As.
func (e *panicError) Unwrap() error {
	err, _ := e.value.(error)
	return err
}

// recovered makes the error of a recovered value v. It must be called from
// the deferred function that recovered, so the panicking frames are still
// on the stack: the runtime's own frames are skipped, then up to
// panicFrames frames as "function (file:line)".
func recovered(v any) error {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs) // skip Callers, recovered, the deferred func
	frames := runtime.CallersFrames(pcs[:n])
	e := &panicError{value: v}
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && f.Function != "" {
			e.stack = append(e.stack, fmt.Sprintf("%s (%s:%d)", shortFunc(f.Function), path.Base(f.File), f.Line))
		}
		if !more || len(e.stack) == panicFrames {
			break
		}
	}
	return e
}

// shortFunc drops the module path of a function name:
// "github.com/x/y/modules/users.(*T).Apply" is "users.(*T).Apply".
func shortFunc(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// endRunningSteps marks the steps the report still has running (the one a
// panic interrupted) failed with err, and returns the origin of the last.
func endRunningSteps(rep *report.Report, err error) string {
	origin := ""
	for _, m := range rep.Modules {
		for _, s := range m.Steps {
			if s.Result == report.StatusRunning {
				rep.EndStep(s, err, false)
				origin = s.Origin
			}
		}
	}
	return origin
}

// panicPoint wraps the first step of the module PanicPointEnv names with
// one that panics; without the variable, steps are returned as they are.
func panicPoint(steps []modules.Step) []modules.Step {
	module, ok := strings.CutPrefix(os.Getenv(PanicPointEnv), "step:")
	if !ok || module == "" {
		return steps
	}
	for i := range steps {
		if steps[i].Module == module && steps[i].Apply != nil {
			steps[i].Apply = func(context.Context, *modules.Env) error {
				panic("test panic point " + PanicPointEnv + "=step:" + module)
			}
			break
		}
	}
	return steps
}
