package provision

import (
	"errors"
	"fmt"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/certs"
	"github.com/provision-dev/provision/modules/files"
	"github.com/provision-dev/provision/modules/network"
	"github.com/provision-dev/provision/modules/packages"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/scripts"
	"github.com/provision-dev/provision/modules/ssh"
	"github.com/provision-dev/provision/modules/system"
	"github.com/provision-dev/provision/modules/units"
	"github.com/provision-dev/provision/modules/users"
	"github.com/provision-dev/provision/provision/config"
)

// planner is one stage of the fixed module order.
type planner struct {
	name string
	plan func(*config.Config, *rootfs.Root) ([]modules.Step, error)
}

// moduleOrder is SPEC §2 step 6: users exist before files are written so
// `owner:` works without `defer`; scripts run last, on the finished tree.
var moduleOrder = []planner{
	{"random seed", system.PlanRandomSeed}, // random_seed: first, as cloud-init's init stage
	{"users", users.Plan},                  // groups, users, passwords, sudo
	{"ssh", ssh.Plan},
	{"files", files.Plan}, // non-deferred files, directories, links
	{"certs", certs.Plan}, // ca_certs: after write_files, before packages fetch over TLS
	{"system", system.Plan},
	{"network", network.Plan},
	{"packages", packages.Plan}, // repositories, then packages
	{"units", units.Plan},
	{"deferred files", files.PlanDeferred},
	{"scripts", scripts.Plan},                  // bootcmd, Combustion script, runcmd, user scripts
	{"final message", system.PlanFinalMessage}, // final_message: printed last, writes nothing
}

// Plan returns every step a run would perform on root, in apply order.
// Every module is planned even after one fails, so a configuration's
// errors are all reported in one pass; any error means no steps.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	var errs []error
	for _, p := range moduleOrder {
		s, err := p.plan(cfg, root)
		if err != nil {
			errs = append(errs, fmt.Errorf("planning %s: %w", p.name, err))
			continue
		}
		steps = append(steps, s...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return steps, nil
}
