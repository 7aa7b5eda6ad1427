package provision

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
)

func TestFirstBootPredicate(t *testing.T) {
	cases := []struct {
		name      string
		machineID *string
		cmdline   []string
		disabled  bool
		first     bool
		disabledB bool
	}{
		{"missing", nil, nil, false, true, false},
		{"empty", ptr(""), nil, false, true, false},
		{"uninitialized", ptr("uninitialized\n"), nil, false, true, false},
		{"set", ptr("0123456789abcdef0123456789abcdef\n"), nil, false, false, false},
		{"forced by combustion word", ptr("0123456789abcdef0123456789abcdef\n"), []string{"quiet", "combustion.firstboot"}, false, true, false},
		{"forced by ignition word", ptr("0123\n"), []string{"ignition.firstboot"}, false, true, false},
		{"word must be whole", ptr("0123\n"), []string{"xcombustion.firstboot"}, false, false, false},
		{"disabled on cmdline", nil, []string{"cloud-init=disabled"}, false, true, true},
		{"disabled by file", nil, nil, true, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "etc/provision"), 0o755)
			if tc.machineID != nil {
				os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte(*tc.machineID), 0o444)
			}
			if tc.disabled {
				os.WriteFile(filepath.Join(root, disabledPath), nil, 0o644)
			}
			b := ReadBoot(root, tc.cmdline)
			if b.FirstBoot() != tc.first {
				t.Errorf("FirstBoot = %v, want %v (%+v)", b.FirstBoot(), tc.first, b)
			}
			if (b.DisabledBy != "") != tc.disabledB {
				t.Errorf("DisabledBy = %q", b.DisabledBy)
			}
		})
	}
}

func TestShouldRun(t *testing.T) {
	set := Boot{MachineIDState: "set"}
	first := Boot{MachineIDState: "missing"}
	recorded := Boot{MachineIDState: "set", Recorded: "iid-1"}
	cases := []struct {
		name     string
		b        Boot
		explicit bool
		meta, id string
		want     bool
	}{
		{"first boot", first, false, "", "sha256:x", true},
		{"second boot, no new instance", set, false, "", "sha256:x", false},
		{"same instance recorded", recorded, false, "iid-1", "iid-1", false},
		{"new instance-id", recorded, false, "iid-2", "iid-2", true},
		{"cloud instance never provisioned by us", set, false, "iid-9", "iid-9", true},
		{"explicit source runs on a set machine-id", set, true, "", "sha256:x", true},
		{"explicit source, same instance", recorded, true, "iid-1", "iid-1", false},
	}
	for _, tc := range cases {
		if _, got := shouldRun(tc.b, tc.explicit, tc.meta, tc.id); got != tc.want {
			t.Errorf("%s: shouldRun = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestInstanceIDDigestStable(t *testing.T) {
	a := []sources.Document{
		{Origin: config.Origin{File: "script"}, Kind: sources.KindCombustion, Data: []byte("x")},
		{Origin: config.Origin{File: "f"}, Kind: sources.KindCombustion, Data: []byte("y")},
	}
	b := []sources.Document{a[1], a[0]}
	if InstanceID("", a) != InstanceID("", b) {
		t.Error("digest depends on order")
	}
	c := []sources.Document{a[0], {Origin: a[1].Origin, Kind: a[1].Kind, Data: []byte("z")}}
	if InstanceID("", a) == InstanceID("", c) {
		t.Error("digest ignores content")
	}
	if InstanceID("iid", a) != "iid" {
		t.Error("meta-data instance-id not used")
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]sources.Kind{
		"#!/bin/bash\necho\n":                  sources.KindCombustion,
		"#cloud-config\nhostname: x\n":         sources.KindUserData,
		`{"ignition": {"version": "3.4.0"}}`:   sources.KindIgnition,
		`{"other": 1}`:                         sources.KindUserData,
		`{"ignition": {"version": "3.4.0"},}`:  sources.KindIgnition, // broken: its parser says where
		`{"other": 1,}`:                        sources.KindUserData,
		"Content-Type: multipart/mixed; b=x\n": sources.KindUserData,
	}
	for in, want := range cases {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %s, want %s", in, got, want)
		}
	}
}

func ptr(s string) *string { return &s }
