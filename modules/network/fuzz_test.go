package network

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"go.yaml.in/yaml/v3"
)

// fuzzRender parses a document and renders it for both stacks: bad input
// must give an error, never a panic, and good input must render.
func fuzzRender(t *testing.T, format string, data any) {
	m, err := Parse(config.NetworkDoc{Format: format, Data: data})
	if err != nil {
		return
	}
	for _, s := range []Stack{NetworkManager, Networkd} {
		if _, err := Render(m, s); err != nil {
			t.Fatalf("parsed but %s render failed: %v", s, err)
		}
	}
}

func seedInputs(f *testing.F, prefix, name string) {
	dirs, _ := filepath.Glob("testdata/golden/" + prefix + "-*")
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, name)); err == nil {
			f.Add(b)
		}
	}
}

func fuzzYAML(f *testing.F, format, prefix string) {
	seedInputs(f, prefix, "input.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		var data any
		if yaml.Unmarshal(b, &data) != nil {
			return
		}
		fuzzRender(t, format, plainTree(data))
	})
}

func FuzzV1(f *testing.F) {
	f.Add([]byte("version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: static, address: 10.0.0.2, netmask: 255.255.255.0}]}\n"))
	fuzzYAML(f, FormatV1, "v1")
}

func FuzzV2(f *testing.F) {
	f.Add([]byte("version: 2\nethernets: {eth0: {dhcp4: true}}\nvlans: {v: {id: 1, link: eth0}}\n"))
	fuzzYAML(f, FormatV2, "v2")
}

func FuzzOpenStack(f *testing.F) {
	seedInputs(f, "openstack", "input.json")
	f.Fuzz(func(t *testing.T, b []byte) {
		var data any
		if len(b) > 64<<10 || json.Unmarshal(b, &data) != nil {
			return
		}
		fuzzRender(t, FormatOpenStack, data)
	})
}

func FuzzEC2(f *testing.F) {
	seedInputs(f, "ec2", "input.json")
	f.Add([]byte(`{"macs": {"0a:00:00:00:00:01": null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var data any
		if len(b) > 64<<10 || json.Unmarshal(b, &data) != nil {
			return
		}
		fuzzRender(t, FormatEC2, data)
	})
}
