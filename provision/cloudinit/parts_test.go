package cloudinit

import (
	"context"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// warned reports whether some warning of cfg contains s.
func warned(cfg *config.Config, s string) bool {
	for _, w := range cfg.Warnings {
		if strings.Contains(w.Message, s) {
			return true
		}
	}
	return false
}

// A cloud-config part that is not a mapping is skipped with a warning, as
// cloud-init logs and goes on; the other parts still apply.
func TestNonMappingCloudConfigPartSkipped(t *testing.T) {
	ud := "Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\n" +
		"--XX\nContent-Type: text/cloud-config\n\n#cloud-config\n- just\n- a list\n" +
		"--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nhostname: kept\n" +
		"--XX\nContent-Type: text/cloud-config\n\n#cloud-config\nonly a string\n" +
		"--XX--\n"
	cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(ud)}}, Options{})
	if err != nil {
		t.Fatalf("rejected: %v", err)
	}
	if cfg.System.Hostname.Value != "kept" {
		t.Errorf("hostname %q: the mapping part was not applied", cfg.System.Hostname.Value)
	}
	if !warned(cfg, "not a mapping") || len(cfg.Warnings) != 2 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	// A single document holding a bare string is skipped, not refused.
	cfg, err = Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte("#cloud-config\nhello\n")}}, Options{})
	if err != nil || !warned(cfg, "not a mapping") {
		t.Errorf("bare string: %v, %v", err, cfg.Warnings)
	}
	// --strict makes it an error, as every warning.
	if _, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte("#cloud-config\n[1, 2]\n")}}, Options{Strict: true}); err == nil {
		t.Error("strict accepted a list cloud-config")
	}
}

// An integer mode is decimal, as cloud-init's decode_perms takes it; the
// warning's suggestion is an octal string that means that same mode, and
// parses back to it.
func TestDecimalPermissionsSuggestion(t *testing.T) {
	for _, tc := range []struct {
		literal string
		mode    uint32
	}{{"493", 0o755}, {"420", 0o644}, {"644", 0o1204}, {"384", 0o600}} {
		ud := "#cloud-config\nwrite_files:\n- path: /etc/x\n  content: x\n  permissions: " + tc.literal + "\n"
		cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(ud)}}, Options{})
		if err != nil || len(cfg.Files) != 1 || len(cfg.Warnings) != 1 {
			t.Fatalf("%s: %v %+v", tc.literal, err, cfg)
		}
		if got := uint32(*cfg.Files[0].Mode); got != tc.mode {
			t.Errorf("%s: mode %#o, want %#o as cloud-init", tc.literal, got, tc.mode)
		}
		msg := cfg.Warnings[0].Message
		_, rest, ok := strings.Cut(msg, `write "`)
		suggestion, _, ok2 := strings.Cut(rest, `"`)
		if !ok || !ok2 {
			t.Fatalf("%s: no suggestion in %q", tc.literal, msg)
		}
		again := strings.Replace(ud, "permissions: "+tc.literal, "permissions: '"+suggestion+"'", 1)
		cfg2, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(again)}}, Options{Strict: true})
		if err != nil {
			t.Errorf("%s: suggestion %q refused: %v", tc.literal, suggestion, err)
			continue
		}
		if got := uint32(*cfg2.Files[0].Mode); got != tc.mode {
			t.Errorf("%s: suggestion %q means %#o, not %#o", tc.literal, suggestion, got, tc.mode)
		}
	}
}

// launch-index on archive entries and MIME parts: with meta-data's
// ami-launch-index, parts for another instance are dropped as cloud-init's
// launch-index filter drops them; without it they are kept with a warning.
func TestLaunchIndex(t *testing.T) {
	archive := "#cloud-config-archive\n" +
		"- {type: text/cloud-config, launch-index: 0, content: 'hostname: zero'}\n" +
		"- {type: text/cloud-config, launch-index: 1, content: 'timezone: UTC'}\n" +
		"- {type: text/cloud-config, content: 'locale: C.UTF-8'}\n"
	mime := "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n" +
		"--B\nContent-Type: text/cloud-config\nLaunch-Index: 1\n\nhostname: one\n" +
		"--B\nContent-Type: text/cloud-config\nLaunch-Index: 0\n\ntimezone: UTC\n" +
		"--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\ntrue\n" +
		"--B--\n"
	meta := func(idx string) *Blob {
		if idx == "" {
			return nil
		}
		return &Blob{Data: []byte("instance-id: i-1\nami-launch-index: " + idx + "\n")}
	}
	for _, tc := range []struct {
		name, ud, idx     string
		host, tz, locale  string
		scripts, warnings int
	}{
		{"archive, index 0", archive, "0", "zero", "", "C.UTF-8", 0, 0},
		{"archive, index 1", archive, "1", "", "UTC", "C.UTF-8", 0, 0},
		{"archive, no index", archive, "", "zero", "UTC", "C.UTF-8", 0, 2},
		{"mime, index 1", mime, "1", "one", "", "", 1, 0},
		{"mime, index 0", mime, "0", "", "UTC", "", 1, 0},
		{"mime, no index", mime, "", "one", "UTC", "", 1, 2},
	} {
		cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(tc.ud)}, MetaData: meta(tc.idx)}, Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if cfg.System.Hostname.Value != tc.host || cfg.System.Timezone.Value != tc.tz || cfg.System.Locale.Value != tc.locale ||
			len(cfg.Scripts) != tc.scripts || len(cfg.Warnings) != tc.warnings {
			t.Errorf("%s: hostname %q timezone %q locale %q, %d scripts, warnings %v", tc.name,
				cfg.System.Hostname.Value, cfg.System.Timezone.Value, cfg.System.Locale.Value, len(cfg.Scripts), cfg.Warnings)
		}
		if tc.warnings > 0 && !warned(cfg, "ami-launch-index") {
			t.Errorf("%s: warnings %v", tc.name, cfg.Warnings)
		}
	}
}

// vendor_data.prefix (a command cloud-init runs vendor scripts under) is
// not implemented: a warning, an error under --strict.
func TestVendorDataPrefixWarns(t *testing.T) {
	set := DataSet{
		UserData:   &Blob{Data: []byte("#cloud-config\nvendor_data: {enabled: true, prefix: [/usr/bin/env, X=1]}\n")},
		VendorData: &Blob{Data: []byte("#!/bin/sh\necho vendor\n")},
	}
	cfg, err := Parse(context.Background(), set, Options{})
	if err != nil || !warned(cfg, "vendor_data.prefix") {
		t.Errorf("got %v, %v", err, cfg.Warnings)
	}
	if _, err := Parse(context.Background(), set, Options{Strict: true}); err == nil {
		t.Error("--strict accepted vendor_data.prefix")
	}
}

// A cloud-config part's own top-level launch-index filters it like the
// Launch-Index header, and passes without the "not supported" warning.
func TestCloudConfigLaunchIndexKey(t *testing.T) {
	ud := "#cloud-config-archive\n" +
		"- \"#cloud-config\\nlaunch-index: 2\\nhostname: two\\n\"\n" +
		"- \"#cloud-config\\nlaunch-index: 3\\ntimezone: UTC\\n\"\n"
	meta := &Blob{Data: []byte("instance-id: i-1\nami-launch-index: 2\n")}
	cfg, err := Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(ud)}, MetaData: meta}, Options{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.System.Hostname.Value != "two" || cfg.System.Timezone.Value != "" || len(cfg.Warnings) != 0 {
		t.Errorf("hostname %q timezone %q warnings %v", cfg.System.Hostname.Value, cfg.System.Timezone.Value, cfg.Warnings)
	}
}
