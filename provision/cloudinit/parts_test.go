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
