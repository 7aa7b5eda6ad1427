// Package packages plans repository and package changes. This release lists
// them in the plan; installing inside the snapshot chroot is not done yet, so
// the steps carry no Apply and the engine reports them as not executed.
package packages

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Plan lists repositories to add, then the refresh/upgrade/install steps.
func Plan(cfg *config.Config, _ *rootfs.Root) ([]modules.Step, error) {
	var steps []modules.Step
	for _, r := range cfg.Repositories {
		steps = append(steps, modules.Step{
			Module: "packages", Action: "add " + r.Manager + " repository", Target: r.Name,
			Detail: r.BaseURL, Origin: r.Origin,
		})
	}
	if cfg.PackageUpdate != nil && cfg.PackageUpdate.Value {
		steps = append(steps, modules.Step{Module: "packages", Action: "refresh", Target: "repositories", Origin: cfg.PackageUpdate.Origin})
	}
	if cfg.PackageUpgrade != nil && cfg.PackageUpgrade.Value {
		steps = append(steps, modules.Step{Module: "packages", Action: "upgrade", Target: "all packages", Origin: cfg.PackageUpgrade.Origin})
	}
	for _, p := range cfg.Packages {
		name := p.Name
		if p.Version != "" {
			name = fmt.Sprintf("%s=%s", p.Name, p.Version)
		}
		steps = append(steps, modules.Step{Module: "packages", Action: "install", Target: strings.TrimSpace(name), Origin: p.Origin})
	}
	return steps, nil
}
