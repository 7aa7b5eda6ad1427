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
