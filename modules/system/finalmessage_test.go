package system

import (
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

func TestRenderFinal(t *testing.T) {
	vars := finalVars("nocloud", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "12.34")
	got := renderFinal("up $UPTIME s, ${uptime}; at $TIMESTAMP from $DATASOURCE/${datasource}; $HOME $Uptime ${VERSION}", vars)
	want := "up 12.34 s, 12.34; at Fri, 02 Jan 2026 03:04:05 +0000 from nocloud/nocloud; $HOME $Uptime " + vars["version"]
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if !strings.HasPrefix(vars["version"], "provision ") {
		t.Errorf("version %q", vars["version"])
	}
}

// The message is the plan's last step: it prints, and writes nothing.
func TestFinalMessageStep(t *testing.T) {
	cfg := &config.Config{FinalMessage: config.Setting{Value: "  ready from $DATASOURCE\n", Origin: config.Origin{Source: "nocloud", File: "user-data", Line: 4}}}
	steps, err := PlanFinalMessage(cfg, nil)
	if err != nil || len(steps) != 1 || steps[0].Action != "print final message" || !strings.Contains(steps[0].Detail, "writes nothing") {
		t.Fatalf("steps %v, %v", steps, err)
	}
	root := rootfstest.NewRoot(t, map[string]string{"etc/": ""})
	out := rootfstest.Apply(t, root, steps)
	if out != "ready from nocloud\n" {
		t.Errorf("console %q", out)
	}
	if steps, _ := PlanFinalMessage(&config.Config{}, nil); len(steps) != 0 {
		t.Errorf("no final_message: %v", steps)
	}
}
