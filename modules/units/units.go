// Package units plans systemd unit files, drop-ins, enablement and masks.
// This release lists them in the plan only; steps carry no Apply.
package units

import (
	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Plan lists one step per unit action.
func Plan(cfg *config.Config, _ *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	for _, u := range cfg.Units {
		if u.Contents != nil {
			steps = append(steps, modules.Step{Module: "units", Action: "write unit", Target: u.Name, Origin: u.Origin})
		}
		for _, d := range u.Dropins {
			steps = append(steps, modules.Step{Module: "units", Action: "write drop-in", Target: u.Name + ".d/" + d.Name, Origin: u.Origin})
		}
		switch {
		case u.Mask:
			steps = append(steps, modules.Step{Module: "units", Action: "mask", Target: u.Name, Origin: u.Origin})
		case u.Enabled != nil && *u.Enabled:
			steps = append(steps, modules.Step{Module: "units", Action: "enable", Target: u.Name, Origin: u.Origin})
		case u.Enabled != nil:
			steps = append(steps, modules.Step{Module: "units", Action: "disable", Target: u.Name, Origin: u.Origin})
		}
	}
	return steps, nil
}
