package provision

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/disk"
	"github.com/provision-dev/provision/modules/power"
	"github.com/provision-dev/provision/provision/config"
)

// PlanAfterCommit plans what acts outside the transaction, once it has
// committed: growpart and resize_rootfs change the partition table and
// the filesystem, which no snapshot holds and no abort could undo, and
// power_state's unit must exist only for a boot whose root was
// provisioned. mount is the target's root mount, live ("" in a dry run);
// runDir is the running system's /run when the run is the boot's own, in
// the initrd ("" elsewhere: power_state is then skipped).
func PlanAfterCommit(cfg *config.Config, mount, runDir string) ([]modules.Step, error) {
	var steps []modules.Step
	var errs []error
	for _, p := range []struct {
		name string
		plan func() ([]modules.Step, error)
	}{
		// cloud-init's order: growpart, then resizefs (init stage),
		// power_state last of all (final stage).
		{"growpart and resize_rootfs", func() ([]modules.Step, error) { return disk.Plan(cfg, mount) }},
		{"power_state", func() ([]modules.Step, error) { return power.Plan(cfg, runDir, mount) }},
	} {
		s, err := p.plan()
		if err != nil {
			errs = append(errs, fmt.Errorf("planning %s: %w", p.name, err))
			continue
		}
		steps = append(steps, s...)
	}
	return steps, errors.Join(errs...)
}

// applyAfterCommit applies the post-commit steps. The new root is the
// system already, so a failure cannot undo the run, nor should it stop
// the boot in the emergency shell (provision.on_failure) over a disk that
// stayed small: each failed step is a warning, the run is done, and its
// report says it failed, which `provision status` shows as cloud-init's
// "degraded done". The other steps still run: power_state does not
// depend on growpart.
func applyAfterCommit(ctx context.Context, res *Result, cfg *config.Config, opts Options, console io.Writer) {
	rep := res.Report
	steps, err := PlanAfterCommit(cfg, opts.Root, opts.RunDir)
	if err != nil {
		warn(res, console, err.Error())
	}
	env := &modules.Env{Console: console}
	for _, s := range steps {
		if s.Apply == nil {
			continue
		}
		res.Plan = append(res.Plan, s)
		sr, err := applyStep(ctx, env, rep, console, s)
		if err != nil {
			sr.Status, sr.Error = StatusFailed, err.Error()
			res.Steps = append(res.Steps, sr)
			warn(res, console, fmt.Sprintf("%s: %v (after the commit: the provisioned root stays)", s, err))
			continue
		}
		res.Steps = append(res.Steps, sr)
		fmt.Fprintf(console, "[ OK ] %s\n", s)
	}
}
