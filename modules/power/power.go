// Package power applies cloud-init's power_state. cloud-init changes the
// power state at the very end of its last stage, in the booted system;
// provision is done before that system starts, so it leaves a one-shot
// unit (and, for a delay, a timer) in the running system's /run, which
// survives switch_root and is gone on the next boot: the booted system
// runs it once, after it finished starting, on the boot the configuration
// was applied in.
//
// The unit runs systemctl, which talks to the service manager over its
// private socket, not cloud-init's shutdown(8): `shutdown +N` needs
// systemd-logind and the D-Bus system bus, which a minimal system lacks
// ("Failed to connect to bus"), and a run must not depend on them.
package power

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// UnitName is the unit the booted system runs; TimerName starts it after
// a delay.
const (
	UnitName  = "provision-power-state.service"
	TimerName = "provision-power-state.timer"
)

// UnitDir is where runtime units live, relative to /run: systemd reads
// it after switch_root, before it starts the default target.
const UnitDir = "/systemd/system"

// wantsDir holds the symlink that pulls the unit (or timer) into the boot.
const wantsDir = UnitDir + "/multi-user.target.wants/"

// SkippedHere is the plan's word for a run that is not the boot's.
const SkippedHere = "power_state: applies only at first boot in the initrd; skipped here"

// Plan plans power_state. runDir is the running system's /run when this
// run is the boot's own (in the initrd, where the machine about to start
// is this one); "" elsewhere: a run --root on a workstation must never
// power the workstation off, so the step says it is skipped. target is
// the target root, checked for the systemd that is to run the unit.
func Plan(cfg *config.Config, runDir, target string) ([]modules.Step, error) {
	ps := cfg.PowerState
	if ps == nil {
		return nil, nil
	}
	if ps.Condition.Never {
		return []modules.Step{{
			Module: "power", Action: "leave", Target: "the power state", Origin: ps.Origin,
			Detail: "power_state: condition false, nothing changes",
			Apply:  func(context.Context, *modules.Env) error { return nil },
		}}, nil
	}
	what := describe(ps)
	if runDir == "" {
		return []modules.Step{{
			Module: "power", Action: "skip", Target: ps.Mode, Origin: ps.Origin,
			Detail: SkippedHere + " (" + what + ")",
			Apply: func(_ context.Context, env *modules.Env) error {
				if env.Console != nil {
					fmt.Fprintf(env.Console, "%s: %s\n", SkippedHere, modules.Printable(what))
				}
				return nil
			},
		}}, nil
	}
	unit, timer := Unit(ps), Timer(ps)
	if target != "" && !hasSystemd(target) {
		err := fmt.Errorf("the target has no systemd (%s) to run the power_state unit: nothing is scheduled", strings.Join(systemdPaths, ", "))
		return []modules.Step{{
			Module: "power", Action: "schedule " + ps.Mode, Target: UnitName, Origin: ps.Origin,
			Detail: what + "; " + err.Error(),
			Apply:  func(context.Context, *modules.Env) error { return err },
		}}, nil
	}
	return []modules.Step{{
		Module: "power", Action: "schedule " + ps.Mode, Target: "/run" + UnitDir + "/" + UnitName, Origin: ps.Origin,
		Detail: what + "; once the booted system has started, this boot only",
		Apply: func(_ context.Context, env *modules.Env) error {
			return Write(runDir, unit, timer)
		},
	}}, nil
}

// systemdPaths are where a target's systemd is (usr-merged or not).
var systemdPaths = []string{"/usr/lib/systemd/systemd", "/lib/systemd/systemd"}

func hasSystemd(target string) bool {
	r, err := rootfs.New(target)
	if err != nil {
		return false
	}
	for _, p := range systemdPaths {
		if _, err := r.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// Write leaves the unit, the timer when there is one, and the wants link
// of the one that starts the other in runDir (the running system's /run).
func Write(runDir, unit, timer string) error {
	r, err := rootfs.New(runDir)
	if err != nil {
		return err
	}
	if err := r.WriteFile(UnitDir+"/"+UnitName, []byte(unit), 0o644, rootfs.RootOwner); err != nil {
		return fmt.Errorf("writing the power_state unit: %w", err)
	}
	start := UnitName
	if timer != "" {
		if err := r.WriteFile(UnitDir+"/"+TimerName, []byte(timer), 0o644, rootfs.RootOwner); err != nil {
			return fmt.Errorf("writing the power_state timer: %w", err)
		}
		start = TimerName
	}
	if err := r.Symlink("../"+start, wantsDir+start); err != nil {
		return fmt.Errorf("enabling the power_state unit: %w", err)
	}
	return nil
}

// describe is the plan's summary: mode, delay, condition.
func describe(ps *config.PowerState) string {
	s := ps.Mode
	if ps.DelayMinutes == 0 {
		s += " now"
	} else {
		s += " in " + strconv.Itoa(ps.DelayMinutes) + " min"
	}
	switch {
	case ps.Condition.Shell != "":
		s += ", if `" + ps.Condition.Shell + "` exits 0"
	case len(ps.Condition.Argv) > 0:
		s += ", if `" + strings.Join(ps.Condition.Argv, " ") + "` exits 0"
	}
	return s
}

// Command is what the unit runs: systemctl's verb for the mode, the
// message logged with the shutdown. It does not wait for the job (it
// would wait for its own unit to be stopped).
func Command(ps *config.PowerState) []string {
	argv := []string{"systemctl", "--no-block"}
	if ps.Message != "" {
		argv = append(argv, "--message="+ps.Message)
	}
	return append(argv, ps.Mode)
}

// Unit renders the service. The condition is an ExecCondition=:
// exit 0 goes ahead, 1 to 254 skip the unit without failing it (cloud-init
// applies the change on 0 only, too). Without a delay it runs after
// multi-user.target, the booted system's equivalent of cloud-init's final
// stage having ended; with one, the timer starts it.
func Unit(ps *config.PowerState) string {
	var b strings.Builder
	header(&b, ps)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s as the first-boot configuration asks (power_state)\n", titles[ps.Mode])
	b.WriteString("After=multi-user.target\n")
	// exec, not oneshot: the power-off stops this unit while systemctl
	// may still be running, and only for a oneshot is that SIGTERM a
	// failure.
	b.WriteString("\n[Service]\nType=exec\n")
	switch {
	case ps.Condition.Shell != "":
		b.WriteString("ExecCondition=" + ExecLine([]string{"/bin/sh", "-c", ps.Condition.Shell}) + "\n")
	case len(ps.Condition.Argv) > 0:
		b.WriteString("ExecCondition=" + ExecLine(ps.Condition.Argv) + "\n")
	}
	if ps.Message != "" {
		// systemctl hands the message to logind's wall; where there is
		// none it would be lost, so the unit says it itself, on the
		// console and in the journal.
		b.WriteString("ExecStartPre=" + ExecLine([]string{"echo", ps.Message}) + "\n")
		b.WriteString("StandardOutput=journal+console\n")
	}
	b.WriteString("ExecStart=" + ExecLine(Command(ps)) + "\n")
	return b.String()
}

// Timer renders the timer of a delayed change: it is started once the
// boot reached multi-user.target and fires delay minutes later, as
// cloud-init's `shutdown +N` after its final stage. "" without a delay.
func Timer(ps *config.PowerState) string {
	if ps.DelayMinutes == 0 {
		return ""
	}
	var b strings.Builder
	header(&b, ps)
	b.WriteString("[Unit]\n")
	fmt.Fprintf(&b, "Description=%s in %d min as the first-boot configuration asks (power_state)\n", titles[ps.Mode], ps.DelayMinutes)
	b.WriteString("After=multi-user.target\n")
	b.WriteString("\n[Timer]\n")
	fmt.Fprintf(&b, "OnActiveSec=%dmin\nAccuracySec=1s\nUnit=%s\n", ps.DelayMinutes, UnitName)
	return b.String()
}

func header(b *strings.Builder, ps *config.PowerState) {
	b.WriteString("# Written by provision at first boot: cloud-init's power_state from\n")
	b.WriteString("# " + strings.ReplaceAll(modules.Printable(ps.Origin.String()), "\n", " ") + ".\n")
	b.WriteString("# It lives in /run: it runs on this boot only.\n")
}

var titles = map[string]string{"poweroff": "Power off", "reboot": "Reboot", "halt": "Halt"}

// ExecLine quotes argv for an Exec*= line: each word in double quotes
// with C escapes for what the unit parser would otherwise read (quotes,
// backslashes, control characters), % doubled (specifiers) and $ doubled
// (environment expansion), so the program gets the words as given.
func ExecLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = quote(a)
	}
	return strings.Join(words, " ")
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c == '%':
			b.WriteString("%%")
		case c == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
