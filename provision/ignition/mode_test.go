package ignition

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// Special mode bits: spec 3.6.0 applies setuid, setgid and sticky; older
// specs have them masked off (Ignition's translation to 3.6 does so) with
// a warning, so a 3.5.0 file with mode 2541 (04755) is not setuid.
func TestSpecialModeBitsBySpec(t *testing.T) {
	cfgFor := func(version string) string {
		return `{"ignition": {"version": "` + version + `"}, "storage": {` +
			`"files": [{"path": "/usr/local/bin/tool", "contents": {"source": "data:,x"}, "mode": 2541}],` +
			`"directories": [{"path": "/srv/drop", "mode": 1023}, {"path": "/srv/team", "mode": 1528}]}}`
	}
	for _, tc := range []struct {
		version         string
		file, drop, grp fs.FileMode
		warnings        int
	}{
		{"3.0.0", 0o755, 0o777, 0o770, 3},
		{"3.3.0", 0o755, 0o777, 0o770, 3},
		{"3.5.0", 0o755, 0o777, 0o770, 3},
		{"3.6.0", 0o4755, 0o1777, 0o2770, 0},
	} {
		cfg, err := Parse(config.Origin{Source: "test", File: "config.ign"}, []byte(cfgFor(tc.version)))
		if err != nil {
			t.Fatalf("%s: %v", tc.version, err)
		}
		if len(cfg.Files) != 1 || len(cfg.Directories) != 2 {
			t.Fatalf("%s: %+v", tc.version, cfg)
		}
		if got := *cfg.Files[0].Mode; got != tc.file {
			t.Errorf("%s: file mode %#o, want %#o", tc.version, uint32(got), uint32(tc.file))
		}
		if got := *cfg.Directories[0].Mode; got != tc.drop {
			t.Errorf("%s: directory mode %#o, want %#o", tc.version, uint32(got), uint32(tc.drop))
		}
		if got := *cfg.Directories[1].Mode; got != tc.grp {
			t.Errorf("%s: directory mode %#o, want %#o", tc.version, uint32(got), uint32(tc.grp))
		}
		if len(cfg.Warnings) != tc.warnings {
			t.Errorf("%s: warnings %v", tc.version, cfg.Warnings)
		}
		for _, w := range cfg.Warnings {
			if !strings.Contains(w.Message, "3.6.0") {
				t.Errorf("%s: warning does not say which spec applies them: %s", tc.version, w.Message)
			}
		}
	}
}
