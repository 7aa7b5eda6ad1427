// Package network plans the target's network configuration. This release
// lists each network document in the plan; rendering NetworkManager keyfiles
// or systemd-networkd files is not done yet, so steps carry no Apply.
package network

import (
	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Plan lists one step per network document.
func Plan(cfg *config.Config, _ *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	for _, n := range cfg.Network {
		action := "configure"
		if n.Disabled {
			action = "leave unconfigured (config: disabled)"
		}
		steps = append(steps, modules.Step{Module: "network", Action: action, Target: n.Format, Origin: n.Origin})
	}
	return steps, nil
}
