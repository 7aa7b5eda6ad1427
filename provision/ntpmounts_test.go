package provision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

// A dry run without --root plans ntp, mounts and swap offline against the
// MicroOS-like base tree, given MicroOS's chrony with a warning: chrony's
// drop-in and enable, the fstab lines and the swap file, nothing asked of
// the network or the host.
func TestDryRunNTPMountsSwap(t *testing.T) {
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: i-ntp\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nntp:\n  servers: [ntp.example.org]\nmounts:\n  - [vdb, /data]\nswap:\n  size: 1G\n"), 0o644)
	res := Run(context.Background(), Options{Sources: []sources.Source{dir.New(seed)}, DryRun: true})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "ntp: the image's NTP client is assumed to be chrony, as MicroOS ships it (checked only with --root)") {
		t.Errorf("no warning that chrony was assumed:\n%s", w)
	}
	var lines []string
	for _, s := range res.Plan {
		lines = append(lines, s.String())
	}
	plan := strings.Join(lines, "\n")
	for _, want := range []string{
		"ntp: write chrony configuration /etc/chrony.d/cloud-init.conf (ntp.example.org)",
		"units: enable chronyd.service",
		"mounts: create swap file /swap.img (1 GiB, NOCOW",
		"mounts: create mount point /data",
		"mounts: write /etc/fstab (2 lines added",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
}
