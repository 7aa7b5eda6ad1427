package system

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// PlanFinalMessage plans cloud-init's final_message: the last step of the
// plan prints it to the console, its variables substituted then, and
// writes nothing (cloud-init's boot-finished marker is its own). The
// engine keeps a step's console output in the report.
func PlanFinalMessage(cfg *config.Config, _ *rootfs.Root) ([]modules.Step, error) {
	fm := cfg.FinalMessage
	if !fm.IsSet() {
		return nil, nil
	}
	msg := strings.TrimSpace(fm.Value)
	return []modules.Step{{
		Module: "system", Action: "print final message", Target: "console", Origin: fm.Origin,
		Detail: "writes nothing; $UPTIME, $TIMESTAMP, $DATASOURCE, $VERSION substituted",
		Apply: func(_ context.Context, env *modules.Env) error {
			if env.Console == nil {
				return nil
			}
			vars := finalVars(fm.Origin.Source, time.Now(), readUptime())
			_, err := fmt.Fprintln(env.Console, modules.PrintableLines(renderFinal(msg, vars)))
			return err
		},
	}}, nil
}

// finalVar is $name or ${name}, as cloud-init's basic template renderer
// reads them.
var finalVar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$(?:\{([A-Za-z0-9_.]+)\}|([A-Za-z0-9_.]+))`) })

// renderFinal substitutes the variables cloud-init gives the message
// (lower or upper case); any other $name is left as written.
func renderFinal(msg string, vars map[string]string) string {
	return finalVar().ReplaceAllStringFunc(msg, func(m string) string {
		sm := finalVar().FindStringSubmatch(m)
		name := sm[1] + sm[2]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := vars[strings.ToLower(name)]; ok && name == strings.ToUpper(name) {
			return v
		}
		return m
	})
}

// finalVars are the message's variables: the data source the message came
// from, the time in RFC 2822 form, the uptime in seconds and this
// program's version.
func finalVars(source string, now time.Time, uptime string) map[string]string {
	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	return map[string]string{
		"uptime":     uptime,
		"timestamp":  now.Format(time.RFC1123Z),
		"datasource": source,
		"version":    "provision " + version,
	}
}

// readUptime is the first field of /proc/uptime (the running kernel's,
// which is the booting machine's in the initrd).
func readUptime() string {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
