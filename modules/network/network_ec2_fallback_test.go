package network

import (
	"strings"
	"testing"

	"os"
	"path/filepath"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// EC2 interface metadata is a fallback: on a target without a network stack
// it is left alone instead of failing the run; with NetworkManager it gives
// a DHCP profile for the primary NIC.
func TestEC2FallbackWithoutStack(t *testing.T) {
	doc := config.NetworkDoc{Origin: config.Origin{Source: "ec2", File: "meta-data"}, Format: FormatEC2, Data: map[string]any{
		"interfaces": map[string]any{"macs": map[string]any{
			"0a:1b:2c:3d:4e:5f": map[string]any{"device-number": "0", "local-ipv4s": "10.0.0.5"},
		}},
	}}
	cfg := &config.Config{Network: []config.NetworkDoc{doc}}
	bare := treeWith(t, nil)
	steps, err := Plan(cfg, bare)
	if err != nil {
		t.Fatalf("a target without a stack failed the plan: %v", err)
	}
	if len(steps) != 1 || steps[0].Action != "leave unconfigured" {
		t.Fatalf("steps %v", steps)
	}
	nm := treeWith(t, map[string]string{"usr/lib/systemd/system/NetworkManager.service": "[Unit]\n"})
	steps, err = Plan(cfg, nm)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 || !strings.Contains(steps[0].String(), ".nmconnection") {
		t.Fatalf("no NetworkManager profile planned: %v", steps)
	}
	// A network configuration the user gave still needs a stack.
	cfg.Network[0].Format = FormatV2
	cfg.Network[0].Data = map[string]any{"version": 2, "ethernets": map[string]any{"eth0": map[string]any{"dhcp4": true}}}
	if _, err := Plan(cfg, bare); err == nil {
		t.Fatal("a user's network-config on a target without a stack was accepted")
	}
}

func treeWith(t *testing.T, files map[string]string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
