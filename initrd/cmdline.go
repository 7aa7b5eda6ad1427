// Package initrd is `provision init`: the PID-1 helper of a minimal,
// non-systemd initramfs. It mounts the API filesystems, finds and mounts the
// root named by root=, runs the provisioning against it, mounts the default
// subvolume the run may have changed, and switches root into the real init.
// The dracut module for systemd initrds lives next to it in initrd/dracut/.
package initrd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FailurePolicy is what provision.on_failure= asks for when the run fails.
type FailurePolicy string

const (
	// OnFailureEmergency stops the boot with a banner (and a shell when the
	// initramfs has one), like Combustion and Ignition do.
	OnFailureEmergency FailurePolicy = "emergency"
	// OnFailureContinue boots the untouched old root; the next boot retries.
	OnFailureContinue FailurePolicy = "continue"
	// OnFailureReboot restarts the machine.
	OnFailureReboot FailurePolicy = "reboot"
)

// DefaultRootTimeout bounds the wait for the root device. The kernel's own
// rootwait waits forever; a machine that never finds its disk should say so.
const DefaultRootTimeout = 30 * time.Second

// Cmdline is what `provision init` takes from /proc/cmdline.
type Cmdline struct {
	Root       RootSpec
	RootFSType string // rootfstype=, empty: probe the superblock
	RootFlags  string // rootflags=, passed to mount(2) as data
	// ReadOnly is the final mount mode of the root handed to init. The kernel
	// mounts the root read-only unless "rw" is given; we follow it.
	ReadOnly    bool
	Init        string // init=, default /sbin/init
	OnFailure   FailurePolicy
	RootTimeout time.Duration
	// Params holds every key=value (last one wins) and bare word (value "")
	// in order of appearance, for callers that want more.
	Params map[string]string
}

// RootSpec is a parsed root= value.
type RootSpec struct {
	Kind  RootKind
	Value string // path for RootPath, the label or UUID otherwise
}

// RootKind says how root= names the device.
type RootKind int

const (
	RootNone RootKind = iota
	RootPath
	RootLabel
	RootUUID
	RootPartUUID
	RootPartLabel
)

func (k RootKind) String() string {
	switch k {
	case RootPath:
		return "path"
	case RootLabel:
		return "LABEL"
	case RootUUID:
		return "UUID"
	case RootPartUUID:
		return "PARTUUID"
	case RootPartLabel:
		return "PARTLABEL"
	}
	return "none"
}

func (r RootSpec) String() string {
	if r.Kind == RootPath {
		return r.Value
	}
	return r.Kind.String() + "=" + r.Value
}

// SplitCmdline splits a kernel command line the way the kernel's next_arg
// does: words are separated by spaces, and double quotes group spaces into a
// word and are removed ("a=\"b c\"" and "\"a=b c\"" both give a=b c).
// Everything after a bare "--" belongs to init and is returned separately.
func SplitCmdline(s string) (words, initArgs []string) {
	var cur strings.Builder
	inQuote, inWord := false, false
	var out []string
	flush := func() {
		if inWord {
			out = append(out, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			inWord = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == 0):
			flush()
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	flush()
	for i, w := range out {
		if w == "--" {
			return out[:i], out[i+1:]
		}
	}
	return out, nil
}

// ParseCmdline reads what `provision init` needs from a kernel command line.
// A root= it cannot understand is an error; a missing root= is not (the
// caller decides), so that a cmdline without root still parses for tests.
func ParseCmdline(s string) (*Cmdline, error) {
	words, _ := SplitCmdline(s)
	c := &Cmdline{
		ReadOnly:    true,
		Init:        "/sbin/init",
		OnFailure:   OnFailureEmergency,
		RootTimeout: DefaultRootTimeout,
		Params:      map[string]string{},
	}
	var errs []error
	for _, w := range words {
		key, val, hasVal := strings.Cut(w, "=")
		c.Params[key] = val
		switch key {
		case "ro":
			if !hasVal {
				c.ReadOnly = true
			}
		case "rw":
			if !hasVal {
				c.ReadOnly = false
			}
		case "root":
			r, err := ParseRoot(val)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.Root = r
		case "rootfstype":
			c.RootFSType = val
		case "rootflags":
			c.RootFlags = val
		case "init":
			if !strings.HasPrefix(val, "/") {
				errs = append(errs, fmt.Errorf("cmdline: init=%q: not an absolute path", val))
				continue
			}
			c.Init = val
		case "provision.on_failure":
			switch p := FailurePolicy(val); p {
			case OnFailureEmergency, OnFailureContinue, OnFailureReboot:
				c.OnFailure = p
			default:
				errs = append(errs, fmt.Errorf("cmdline: provision.on_failure=%q: want emergency, continue or reboot", val))
			}
		case "provision.root_timeout", "rootdelay":
			// rootdelay= is the kernel's "sleep this long before mounting";
			// as an upper bound on the wait it means the same to a user.
			d, err := parseSeconds(val)
			if err != nil {
				errs = append(errs, fmt.Errorf("cmdline: %s=%q: %w", key, val, err))
				continue
			}
			c.RootTimeout = d
		}
	}
	return c, errors.Join(errs...)
}

// parseSeconds accepts "30" (seconds, like the kernel) or a Go duration "1m30s".
func parseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("want seconds")
	}
	return d, nil
}

// ParseRoot parses a root= value: /dev/PATH, LABEL=, UUID=, PARTUUID=,
// PARTLABEL=. UUIDs are compared case-insensitively, so they are lowercased.
func ParseRoot(v string) (RootSpec, error) {
	switch {
	case v == "":
		return RootSpec{}, errors.New("cmdline: root= is empty")
	case strings.HasPrefix(v, "/dev/"):
		if strings.Contains(v, "/../") || strings.HasSuffix(v, "/..") {
			return RootSpec{}, fmt.Errorf("cmdline: root=%q: path leaves /dev", v)
		}
		return RootSpec{Kind: RootPath, Value: v}, nil
	}
	key, val, ok := strings.Cut(v, "=")
	if !ok || val == "" {
		return RootSpec{}, fmt.Errorf("cmdline: root=%q: want /dev/..., LABEL=, UUID=, PARTUUID= or PARTLABEL=", v)
	}
	switch strings.ToUpper(key) {
	case "LABEL":
		return RootSpec{Kind: RootLabel, Value: unescapeLabel(val)}, nil
	case "UUID":
		return RootSpec{Kind: RootUUID, Value: strings.ToLower(val)}, nil
	case "PARTUUID":
		// The kernel allows PARTUUID=x/PARTNROFF=n; we do not.
		if strings.Contains(val, "/") {
			return RootSpec{}, fmt.Errorf("cmdline: root=%q: PARTNROFF is not supported", v)
		}
		return RootSpec{Kind: RootPartUUID, Value: strings.ToLower(val)}, nil
	case "PARTLABEL":
		return RootSpec{Kind: RootPartLabel, Value: val}, nil
	}
	return RootSpec{}, fmt.Errorf("cmdline: root=%q: unknown kind %q", v, key)
}

// unescapeLabel undoes the \x20 escaping udev and systemd use in
// /dev/disk/by-label names, so LABEL=my\x20disk matches "my disk".
func unescapeLabel(s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if n, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// PinsSubvolume reports whether rootflags select a subvolume explicitly
// (a systemd-boot entry's rootflags=subvol=@/.snapshots/N/snapshot): then
// the default subvolume alone does not decide what boots.
func (c *Cmdline) PinsSubvolume() bool {
	for _, o := range strings.Split(c.RootFlags, ",") {
		k, _, _ := strings.Cut(o, "=")
		if k == "subvol" || k == "subvolid" {
			return true
		}
	}
	return false
}

// WithSubvolID returns mount options flags with any subvol= or subvolid=
// replaced by subvolid=id: the pinned root of this boot moved to the
// snapshot a run made the default (what Combustion's sysroot.mount drop-in
// does by path).
func WithSubvolID(flags string, id uint64) string {
	var keep []string
	for _, o := range strings.Split(flags, ",") {
		k, _, _ := strings.Cut(o, "=")
		if o == "" || k == "subvol" || k == "subvolid" {
			continue
		}
		keep = append(keep, o)
	}
	return strings.Join(append(keep, "subvolid="+strconv.FormatUint(id, 10)), ",")
}
