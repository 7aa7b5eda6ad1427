package cloudinit

import (
	"strconv"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// powerState reads power_state as cloud-init's cc_power_state_change
// loads it. Where cloud-init logs "Not performing power state change!"
// (no mode, a delay that is neither now nor minutes, a timeout that is no
// number, a condition of another type) the configuration is invalid here:
// a machine that silently stays up is the failure a user finds last.
func (p *parser) powerState(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "power_state", "mapping")
		return
	}
	ps := &config.PowerState{Origin: n.origin, Timeout: 30}
	ok := true
	for i, k := range n.keys {
		v := n.vals[i]
		path := "power_state." + k.value
		switch k.value {
		case "mode":
			var s string
			if s, ok = p.str(v, path); ok {
				switch s {
				case "poweroff", "reboot", "halt":
					ps.Mode = s
				default:
					p.errorf(v.origin, "%s: must be one of poweroff, reboot, halt; found %q", path, s)
					ok = false
				}
			}
		case "delay":
			ps.DelayMinutes, ok = p.powerDelay(v, path)
		case "message":
			if v.kind != kNull {
				ps.Message, ok = p.str(v, path)
			}
		case "timeout":
			ps.Timeout, ok = p.powerTimeout(v, path)
		case "condition":
			ps.Condition, ok = p.powerCondition(v, path)
		default:
			p.warnf(k.origin, "unknown power_state key %q", k.value)
		}
		if !ok {
			return
		}
	}
	if ps.Mode == "" {
		p.errorf(n.origin, "power_state: mode is required (poweroff, reboot or halt)")
		return
	}
	p.cfg.PowerState = ps
}

// powerDelay is the distro's shutdown_command: "now", or a number of
// minutes given as an integer or a string int() takes ("+5", "5").
func (p *parser) powerDelay(v *node, path string) (int, bool) {
	bad := func() (int, bool) {
		p.errorf(v.origin, "%s: must be 'now' or '+m' (minutes); found %s", path, v.describe())
		return 0, false
	}
	switch v.kind {
	case kInt:
		m, err := intValue(v.value)
		if err != nil || m < 0 || m > maxDelayMinutes {
			return bad()
		}
		return int(m), true
	case kStr:
		s := strings.TrimSpace(v.value)
		if s == "now" {
			return 0, true
		}
		m, err := strconv.Atoi(strings.TrimPrefix(s, "+"))
		if err != nil || m < 0 || m > maxDelayMinutes || strings.HasPrefix(s, "+-") {
			return bad()
		}
		return m, true
	}
	return bad()
}

// maxDelayMinutes bounds a delay to a year: shutdown(8) takes any number,
// but a larger one is a mistake, not a plan.
const maxDelayMinutes = 366 * 24 * 60

// powerTimeout is float(timeout), as cloud-init converts it.
func (p *parser) powerTimeout(v *node, path string) (float64, bool) {
	switch v.kind {
	case kInt, kFloat, kStr:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.value), 64)
		if err == nil && f >= 0 {
			return f, true
		}
		if m, ierr := intValue(v.value); ierr == nil && m >= 0 {
			return float64(m), true
		}
	}
	p.errorf(v.origin, "%s: failed to convert %s to a number of seconds", path, v.describe())
	return 0, false
}

// powerCondition is a boolean, a shell command string or an argv list.
func (p *parser) powerCondition(v *node, path string) (config.PowerCondition, bool) {
	switch v.kind {
	case kBool:
		return config.PowerCondition{Never: v.value != "true"}, true
	case kStr:
		if strings.TrimSpace(v.value) == "" {
			p.errorf(v.origin, "%s: an empty command", path)
			return config.PowerCondition{}, false
		}
		return config.PowerCondition{Shell: v.value}, true
	case kSeq:
		argv, ok := p.argv(v, path)
		if ok && len(argv) == 0 {
			p.errorf(v.origin, "%s: an empty command", path)
			ok = false
		}
		return config.PowerCondition{Argv: argv}, ok
	}
	p.errorf(v.origin, "%s: must be a boolean, a command string or a list; found %s", path, v.describe())
	return config.PowerCondition{}, false
}

func powerStateSchema() js {
	return nullable(object(map[string]js{
		"mode": withDesc(js{"enum": []any{"poweroff", "reboot", "halt"}}, "What to do (required)."),
		"delay": withDesc(anyOf(js{"type": "integer", "minimum": 0}, js{"type": "string", "pattern": `^\+?[0-9]+$`}, js{"const": "now"}),
			"Minutes to wait after the boot finished: now (default) or a number."),
		"message":   withDesc(ref("string"), "The message shutdown(8) broadcasts."),
		"timeout":   withDesc(js{"type": []any{"integer", "number", "string"}}, "cloud-init's wait for itself to end (seconds, default 30); nothing of provision's runs then, so it is accepted and unused."),
		"condition": withDesc(anyOf(typ("boolean"), typ("string"), arrayOf(ref("string"))), "true (default), false, or a command (shell string or argv) whose exit status 0 lets the change happen."),
	}, "mode"))
}
