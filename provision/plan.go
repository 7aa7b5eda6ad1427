package provision

import (
	"errors"
	"fmt"
	"slices"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/certs"
	"github.com/provision-dev/provision/modules/files"
	"github.com/provision-dev/provision/modules/mounts"
	"github.com/provision-dev/provision/modules/network"
	"github.com/provision-dev/provision/modules/ntp"
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
	{"files", files.Plan},   // non-deferred files, directories, links
	{"certs", certs.Plan},   // ca_certs: after write_files, before packages fetch over TLS
	{"mounts", mounts.Plan}, // mounts, swap: cloud-init's cc_mounts runs after write_files too
	{"system", system.Plan},
	{"network", network.Plan},
	{"packages", packages.Plan}, // repositories, then packages
	{"units", units.Plan},
	{"ntp", ntp.Plan}, // ntp: the client's configuration, its service enabled as units enables
	{"deferred files", files.PlanDeferred},
	{"scripts", scripts.Plan},                  // bootcmd, Combustion script, runcmd, user scripts
	{"final message", system.PlanFinalMessage}, // final_message: printed last, writes nothing
}

// Plan returns every step a run would perform on root, in apply order.
// Every module is planned even after one fails, so a configuration's
// errors are all reported in one pass; any error means no steps.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	if extra := ntp.ClientPackages(cfg, root); len(extra) > 0 {
		// ntp's client joins the one install the configuration asks for
		// (cloud-init's cc_ntp installs it itself); the caller's config
		// stays as parsed.
		c := *cfg
		c.Packages = append(slices.Clip(cfg.Packages), extra...)
		cfg = &c
	}
	var steps []modules.Step
	var errs []error
	if err := resolvedConflicts(cfg, root); err != nil {
		errs = append(errs, err)
	}
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
