package provision

import (
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules/rootfs"
)

// describeTarget says, one line per concern, what a run does on the
// target at root beyond the configuration: the /etc model, the boot
// loader's handling of the new snapshot, the target's snapper plugins and
// openSUSE's first-boot flag.
func describeTarget(root string) []string {
	var out []string
	if m, err := readEtcModel(root); err != nil {
		out = append(out, "/etc: "+err.Error())
	} else {
		out = append(out, m.Describe())
	}
	out = append(out, describeBootLoader(root))
	if plugins, grub := snapperPlugins(root); len(plugins) > 0 || grub {
		if grub {
			plugins = append(plugins, "grub (--refresh)")
		}
		out = append(out, fmt.Sprintf("snapper plugins: %s run for the new snapshot with snapper's events (create, set-read-only, set-default, modify)", strings.Join(plugins, ", ")))
	}
	if r, err := rootfs.New(root); err == nil && r.Exists(reconfigSystemFlag) {
		out = append(out, reconfigSystemFlag+" present: removed when the run succeeds (jeos-firstboot's wizard)")
	}
	return out
}
