package system

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// create_hostname_file: false (cloud-init 23.4) creates no /etc/hostname,
// but still updates one the target has.
func TestCreateHostnameFileFalse(t *testing.T) {
	sys := config.System{
		Hostname:           config.Setting{Value: "node1", Origin: config.Origin{Source: "test", Line: 2}},
		CreateHostnameFile: &config.BoolSetting{Value: false},
	}
	cfg := &config.Config{System: sys}
	root := rootfstest.NewRoot(t, map[string]string{"etc/": ""})
	steps, err := planHostname(&cfg.System, root)
	if err != nil || len(steps) != 0 {
		t.Fatalf("no /etc/hostname in the target: steps %v, %v", steps, err)
	}
	root = rootfstest.NewRoot(t, map[string]string{"etc/hostname": "image\n"})
	steps, err = planHostname(&cfg.System, root)
	if err != nil || len(steps) != 1 {
		t.Fatalf("steps %v, %v", steps, err)
	}
	rootfstest.Apply(t, root, steps)
	if b, _ := root.ReadFile("/etc/hostname"); string(b) != "node1\n" {
		t.Errorf("/etc/hostname %q", b)
	}
	steps, _ = planHostname(&cfg.System, nil)
	if len(steps) != 1 || !strings.Contains(steps[0].Detail, "only if the target has this file") {
		t.Errorf("dry run without a target: %v", steps)
	}
	cfg.System.CreateHostnameFile.Value = true
	root = rootfstest.NewRoot(t, map[string]string{"etc/": ""})
	if steps, _ = planHostname(&cfg.System, root); len(steps) != 1 {
		t.Errorf("create_hostname_file true: steps %v", steps)
	}
}
