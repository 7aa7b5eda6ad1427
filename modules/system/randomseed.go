package system

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// PlanRandomSeed plans cloud-init's random_seed: the data appended to
// file, then the command run in the target with RANDOM_SEED_FILE. A file
// under /dev (the default /dev/urandom) is the running kernel's device,
// outside the target and refused by the confinement rules: the kernel's own
// seeding is left alone, and the plan says so.
func PlanRandomSeed(cfg *config.Config, _ *rootfs.Root) ([]modules.Step, error) {
	rs := cfg.RandomSeed
	if rs == nil {
		return nil, nil
	}
	if len(rs.Command) == 0 && rs.CommandRequired {
		return nil, fmt.Errorf("%s: random_seed: command_required is true but no command is given", rs.Origin)
	}
	file := path.Clean(rs.File)
	var steps []modules.Step
	if len(rs.Data) > 0 {
		if isDevice(file) {
			steps = append(steps, modules.Step{
				Module: "system", Action: "leave random seed", Target: file, Origin: rs.Origin,
				Detail: fmt.Sprintf("%d bytes not written: the kernel seeds its own pool; %s is not part of the target", len(rs.Data), file),
				Apply:  func(context.Context, *modules.Env) error { return nil },
			})
		} else {
			data := rs.Data
			steps = append(steps, modules.Step{
				Module: "system", Action: "append random seed", Target: file, Origin: rs.Origin,
				Detail: fmt.Sprintf("%d bytes", len(data)),
				Apply: func(_ context.Context, env *modules.Env) error {
					// As cloud-init's append_file (open in "ab"): a new
					// file gets 0644, an existing one keeps its mode (a
					// 0600 seed stays private); AppendFile keeps it for 0.
					mode := fs.FileMode(0o644)
					if st, err := env.Root.Stat(file); err == nil && st.Mode().IsRegular() {
						mode = 0
					}
					return env.Root.AppendFile(file, data, mode, rootfs.Owner{UID: -1, GID: -1})
				},
			})
		}
	}
	if len(rs.Command) > 0 {
		steps = append(steps, seedCommandStep(rs, file))
	}
	return steps, nil
}

// isDevice reports whether p is under /dev.
func isDevice(p string) bool { return p == "/dev" || strings.HasPrefix(p, "/dev/") }

// seedCommandStep runs random_seed.command in the target. As in
// cloud-init, a command the target does not have is skipped with a line
// on the console unless command_required is true.
func seedCommandStep(rs *config.RandomSeed, file string) modules.Step {
	argv := append([]string(nil), rs.Command...)
	required := rs.CommandRequired
	detail := "RANDOM_SEED_FILE=" + file
	if required {
		detail += "; required"
	} else {
		detail += "; skipped if the target has no " + argv[0]
	}
	return modules.Step{
		Module: "system", Action: "run random seed command", Target: strings.Join(argv, " "), Origin: rs.Origin,
		Detail: detail,
		Apply: func(ctx context.Context, env *modules.Env) error {
			skip := func(why string) error {
				if required {
					return fmt.Errorf("random_seed: command %q: %s, and command_required is true", argv[0], why)
				}
				if env.Console != nil {
					fmt.Fprintf(env.Console, "random_seed: command %s skipped: %s\n", modules.Printable(argv[0]), modules.Printable(why))
				}
				return nil
			}
			if !hasCommand(env.Root, argv[0]) {
				return skip("not found in the target")
			}
			if env.Exec == nil {
				if required {
					return fmt.Errorf("random_seed: command %q: %w", argv[0], modules.ErrNoExecutor)
				}
				return skip("no program runs in the target in this run")
			}
			code, err := env.Exec.Run(ctx, modules.Command{
				Argv:   argv,
				Env:    []string{"RANDOM_SEED_FILE=" + file},
				Output: env.Console,
			})
			if err != nil {
				return fmt.Errorf("random_seed: %w", err)
			}
			if code != 0 {
				return fmt.Errorf("random_seed: %s exited with status %d", argv[0], code)
			}
			return nil
		},
	}
}

// searchPath is where a command name without a slash is looked for in the
// target (cloud-init's which, with the PATH the chroot gives programs).
var searchPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// hasCommand reports whether the target has an executable regular file
// for cmd: a path as given, a name in searchPath.
func hasCommand(root *rootfs.Root, cmd string) bool {
	if root == nil || cmd == "" {
		return false
	}
	cands := []string{cmd}
	if !strings.Contains(cmd, "/") {
		cands = cands[:0]
		for _, d := range searchPath {
			cands = append(cands, path.Join(d, cmd))
		}
	} else if !path.IsAbs(cmd) {
		return false
	}
	for _, c := range cands {
		st, err := root.Stat(c)
		if err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return true
		}
	}
	return false
}
