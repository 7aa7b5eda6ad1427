package platform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/provision-dev/provision/sources/url"
)

// Failure policies for provision.on_failure= (SPEC §2 step 8).
const (
	OnFailureEmergency = "emergency"
	OnFailureContinue  = "continue"
	OnFailureReboot    = "reboot"
)

// DefaultDeviceTimeout is provision.device_timeout='s default.
const DefaultDeviceTimeout = 10 * time.Second

// KernelURL is a configuration URL named on the command line.
type KernelURL struct {
	Param string // url.ParamProvision, url.ParamCombustion or url.ParamIgnition
	URL   string
}

// Options are the provision.* (and compatible) kernel command-line options.
type Options struct {
	// FirstBoot: provision.firstboot, combustion.firstboot or
	// ignition.firstboot was given; FirstBootParam says which.
	FirstBoot      bool
	FirstBootParam string
	// Disabled: provision=disabled or cloud-init=disabled; DisabledBy says which.
	Disabled   bool
	DisabledBy string
	// OnFailure is one of the OnFailure* constants (default emergency).
	OnFailure string
	// DeviceTimeout bounds the wait for a labelled device that should exist.
	DeviceTimeout time.Duration
	// ScriptTimeout bounds each script; 0 means the engine's default.
	ScriptTimeout time.Duration
	// URLs in url.Params order; for a parameter given twice the last wins,
	// as for any kernel parameter.
	URLs []KernelURL
}

// ParseOptions reads the options from command-line words. Invalid values
// are reported (all of them, joined) and the defaults kept for them: the
// caller decides whether a typo in a boot option stops the boot.
func ParseOptions(words []string) (Options, error) {
	o := Options{OnFailure: OnFailureEmergency, DeviceTimeout: DefaultDeviceTimeout}
	var errs []error
	urls := map[string]string{}
	for _, w := range words {
		k, v, hasVal := strings.Cut(w, "=")
		switch k {
		case "provision.firstboot", "combustion.firstboot", "ignition.firstboot":
			if !hasVal || truthy(v) {
				o.FirstBoot, o.FirstBootParam = true, k
			}
		case "provision", "cloud-init":
			if hasVal && v == "disabled" {
				o.Disabled, o.DisabledBy = true, w
			}
		case "provision.on_failure":
			switch v {
			case OnFailureEmergency, OnFailureContinue, OnFailureReboot:
				o.OnFailure = v
			default:
				errs = append(errs, fmt.Errorf("cmdline: %s: want emergency, continue or reboot", w))
			}
		case "provision.device_timeout", "provision.script_timeout":
			d, err := parseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("cmdline: %s: %w", w, err))
				continue
			}
			if k == "provision.device_timeout" {
				o.DeviceTimeout = d
			} else {
				o.ScriptTimeout = d
			}
		case url.ParamProvision, url.ParamCombustion, url.ParamIgnition:
			if v == "" {
				errs = append(errs, fmt.Errorf("cmdline: %s: empty URL", w))
				continue
			}
			urls[k] = v
		}
	}
	for _, p := range url.Params {
		if u, ok := urls[p]; ok {
			o.URLs = append(o.URLs, KernelURL{Param: p, URL: u})
		}
	}
	return o, errors.Join(errs...)
}

func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "0", "false", "no", "off":
		return false
	}
	return true
}

// parseDuration takes plain seconds ("30") or a Go duration ("1m30s").
func parseDuration(v string) (time.Duration, error) {
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("want seconds or a duration such as 30s")
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration")
	}
	return d, nil
}
