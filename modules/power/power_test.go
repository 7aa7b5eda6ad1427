package power

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
)

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		ps   config.PowerState
		want string
	}{
		{config.PowerState{Mode: "poweroff"}, "systemctl --no-block poweroff"},
		{config.PowerState{Mode: "reboot", DelayMinutes: 5, Message: "bye now"}, "systemctl --no-block --message=bye now reboot"},
		{config.PowerState{Mode: "halt"}, "systemctl --no-block halt"},
	} {
		if got := strings.Join(Command(&tc.ps), " "); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.ps, got, tc.want)
		}
	}
}

func TestUnit(t *testing.T) {
	ps := &config.PowerState{Mode: "reboot", Message: `100% "done" $HOME\n`,
		Condition: config.PowerCondition{Shell: "test -e /etc/go"}, Origin: config.Origin{Source: "nocloud", File: "user-data", Line: 3, Column: 1}}
	u := Unit(ps)
	for _, want := range []string{
		"After=multi-user.target\n",
		"Type=exec\n",
		`ExecCondition="/bin/sh" "-c" "test -e /etc/go"` + "\n",
		`ExecStart="systemctl" "--no-block" "--message=100%% \"done\" $$HOME\\n" "reboot"` + "\n",
		"# nocloud:user-data:3:1.\n",
		`ExecStartPre="echo" "100%% \"done\" $$HOME\\n"` + "\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if Timer(ps) != "" {
		t.Error("a timer without a delay")
	}
	argv := &config.PowerState{Mode: "poweroff", Condition: config.PowerCondition{Argv: []string{"/usr/bin/test", "-f", "/x"}}}
	if u := Unit(argv); !strings.Contains(u, `ExecCondition="/usr/bin/test" "-f" "/x"`) {
		t.Errorf("argv condition:\n%s", u)
	}
	if u := Unit(&config.PowerState{Mode: "halt"}); strings.Contains(u, "ExecCondition") {
		t.Errorf("condition true needs no ExecCondition:\n%s", u)
	}
	tm := Timer(&config.PowerState{Mode: "halt", DelayMinutes: 7})
	for _, want := range []string{"After=multi-user.target\n", "OnActiveSec=7min\n", "Unit=" + UnitName + "\n"} {
		if !strings.Contains(tm, want) {
			t.Errorf("timer lacks %q:\n%s", want, tm)
		}
	}
}

func TestQuoteEscapesControl(t *testing.T) {
	if got := quote("a\x01b\tc\nd"); got != `"a\x01b\tc\nd"` {
		t.Errorf("got %s", got)
	}
}

// TestUnitVerifies runs systemd's own parser over the unit.
func TestUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit is not checked by systemd's parser")
	}
	dir := t.TempDir()
	ps := &config.PowerState{Mode: "poweroff", DelayMinutes: 1, Message: "it's 100% done; \"bye\" $USER",
		Condition: config.PowerCondition{Shell: "grep -q x /etc/hostname && [ \"$(id -u)\" = 0 ]"}}
	// verify needs every executable to exist: systemctl may be absent on
	// a build machine, so the check uses a copy naming /bin/true for it.
	u := strings.Replace(Unit(ps), `ExecStart="systemctl"`, `ExecStart="/bin/true"`, 1)
	u = strings.Replace(u, `ExecStartPre="echo"`, `ExecStartPre="/bin/echo"`, 1)
	if err := os.WriteFile(filepath.Join(dir, UnitName), []byte(u), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, TimerName), []byte(Timer(ps)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{UnitName, TimerName} {
		out, err := exec.Command(sa, "verify", "--man=no", filepath.Join(dir, name)).CombinedOutput()
		if err != nil || bytes.Contains(out, []byte("provision-power-state")) {
			t.Fatalf("systemd-analyze verify %s: %v\n%s\n%s", name, err, out, u)
		}
	}
}

func TestPlanOutsideInitrdSkips(t *testing.T) {
	cfg := &config.Config{PowerState: &config.PowerState{Mode: "poweroff"}}
	steps, err := Plan(cfg, "", "")
	if err != nil || len(steps) != 1 {
		t.Fatalf("%v %v", steps, err)
	}
	if !strings.Contains(steps[0].String(), SkippedHere) {
		t.Errorf("plan line %q does not say it is skipped", steps[0])
	}
	var console bytes.Buffer
	if err := steps[0].Apply(context.Background(), &modules.Env{Console: &console}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(console.String(), "skipped here") {
		t.Errorf("console: %q", console.String())
	}
}

func TestPlanWritesRuntimeUnit(t *testing.T) {
	run := t.TempDir()
	cfg := &config.Config{PowerState: &config.PowerState{Mode: "reboot"}}
	steps, err := Plan(cfg, run, "")
	if err != nil || len(steps) != 1 {
		t.Fatalf("%v %v", steps, err)
	}
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(run, "systemd/system", UnitName))
	if err != nil || !strings.Contains(string(b), `ExecStart="systemctl" "--no-block" "reboot"`) {
		t.Fatalf("unit: %v\n%s", err, b)
	}
	link, err := os.Readlink(filepath.Join(run, "systemd/system/multi-user.target.wants", UnitName))
	if err != nil || link != "../"+UnitName {
		t.Fatalf("wants link %q: %v", link, err)
	}
	// A second run (the step is idempotent) leaves the same.
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "systemd/system", TimerName)); err == nil {
		t.Error("a timer without a delay")
	}
}

func TestPlanWritesTimerForDelay(t *testing.T) {
	run := t.TempDir()
	cfg := &config.Config{PowerState: &config.PowerState{Mode: "poweroff", DelayMinutes: 3}}
	steps, _ := Plan(cfg, run, "")
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatal(err)
	}
	wants := filepath.Join(run, "systemd/system/multi-user.target.wants")
	if l, err := os.Readlink(filepath.Join(wants, TimerName)); err != nil || l != "../"+TimerName {
		t.Fatalf("timer link %q: %v", l, err)
	}
	if _, err := os.Lstat(filepath.Join(wants, UnitName)); err == nil {
		t.Error("the service is started at once too")
	}
	if b, err := os.ReadFile(filepath.Join(run, "systemd/system", TimerName)); err != nil || !strings.Contains(string(b), "OnActiveSec=3min") {
		t.Errorf("timer: %v\n%s", err, b)
	}
}

func TestConditionFalseDoesNothing(t *testing.T) {
	run := t.TempDir()
	cfg := &config.Config{PowerState: &config.PowerState{Mode: "reboot", Condition: config.PowerCondition{Never: true}}}
	steps, _ := Plan(cfg, run, "")
	if len(steps) != 1 || !strings.Contains(steps[0].Detail, "condition false") {
		t.Fatalf("%v", steps)
	}
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(run); len(ents) != 0 {
		t.Errorf("condition false wrote %v", ents)
	}
}

func TestTargetWithoutSystemd(t *testing.T) {
	run, target := t.TempDir(), t.TempDir()
	cfg := &config.Config{PowerState: &config.PowerState{Mode: "poweroff"}}
	steps, _ := Plan(cfg, run, target)
	if len(steps) != 1 || !strings.Contains(steps[0].Detail, "no systemd") {
		t.Fatalf("%v", steps)
	}
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err == nil {
		t.Error("scheduled on a target without systemd")
	}
	os.MkdirAll(filepath.Join(target, "usr/lib/systemd"), 0o755)
	os.WriteFile(filepath.Join(target, "usr/lib/systemd/systemd"), nil, 0o755)
	steps, _ = Plan(cfg, run, target)
	if err := steps[0].Apply(context.Background(), &modules.Env{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, "systemd/system", UnitName)); err != nil {
		t.Error(err)
	}
}
