package provision

import (
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// The chroot gets /proc, /sys and /dev exactly when a step will run a
// program: scripts, packages, ca_certs' update tool, random_seed's command.
func TestNeedsChroot(t *testing.T) {
	on := &config.BoolSetting{Value: true}
	for _, c := range []struct {
		name string
		cfg  config.Config
		want bool
	}{
		{"files only", config.Config{Files: []config.File{{Path: "/etc/x"}}}, false},
		{"random_seed data only", config.Config{RandomSeed: &config.RandomSeed{File: "/var/lib/seed", Data: []byte("x")}}, false},
		{"script", config.Config{Scripts: []config.Script{{Kind: config.ScriptRuncmd}}}, true},
		{"package", config.Config{Packages: []config.Package{{Name: "htop"}}}, true},
		{"package_update", config.Config{PackageUpdate: on}, true},
		{"ca_certs", config.Config{CACerts: &config.CACerts{}}, true},
		{"random_seed command", config.Config{RandomSeed: &config.RandomSeed{Command: []string{"pollinate"}}}, true},
	} {
		if got := needsChroot(&c.cfg); got != c.want {
			t.Errorf("%s: needsChroot = %v, want %v", c.name, got, c.want)
		}
	}
}
