package cloudinit

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/provision-dev/provision/provision/config"
)

// defaultMountFields is cloud-init's hardcoded mount_default_fields
// without its x-systemd.after=cloud-init-network.service and _netdev:
// those order the mount after cloud-init's own network stage, which made
// or formatted the disk in the same boot. provision is done in the initrd
// before any mount unit of the real root starts, so there is nothing of
// ours to wait for; nofail keeps a missing disk from stopping the boot.
var defaultMountFields = []*string{nil, nil, ptr("auto"), ptr("defaults,nofail"), ptr("0"), ptr("2")}

func ptr(s string) *string { return &s }

// shortDevice is cloud-init's DEVICE_NAME_FILTER: names it prefixes with
// /dev/ (sda, sda1, xvdb, vdd1, hda, sr0).
var shortDevice = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([x]{0,1}[shv]d[a-z][0-9]*|sr[0-9]+)$`) })

// networkDevice is cloud-init's NETWORK_NAME_FILTER (server:/path).
var networkDevice = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^.+:.*`) })

// metaDevice is cloud-init's is_meta_device_name: names only the cloud's
// block-device-mapping resolves.
func metaDevice(name string) bool {
	switch name {
	case "ami", "root", "swap":
		return true
	}
	return (strings.HasPrefix(name, "ephemeral") || strings.HasPrefix(name, "ebs")) && !strings.Contains(name, ":")
}

// numberField: fs_freq and fs_passno are numbers, or every fstab reader
// (ours, mount, systemd-fstab-generator) stops at the line.
var numberField = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+$`) })

// mounts reads cloud-init's mounts with mount_default_fields, as
// cc_mounts' handle does up to writing: each entry completed from the
// defaults (null fields too), short names given /dev/, names only a
// cloud's block-device-mapping resolves (ephemeral0, swap, ebs1...) skipped
// with a warning, and an entry without a mount point removing the earlier
// entries of its device (cloud-init's way to drop a default).
func (p *parser) mounts(n, defaults *node) {
	fields := defaultMountFields
	if defaults != nil && defaults.kind != kNull {
		if defaults.kind != kSeq || len(defaults.items) != 6 {
			p.errorf(defaults.origin, "mount_default_fields: expected a list of 6 fields (fs_spec, fs_file, fs_vfstype, fs_mntops, fs_freq, fs_passno), got %s", defaults.describe())
			return
		}
		fields = make([]*string, 6)
		for i, it := range defaults.items {
			if it.kind == kNull {
				continue
			}
			s, ok := p.str(it, fmt.Sprintf("mount_default_fields[%d]", i))
			if !ok {
				return
			}
			fields[i] = &s
		}
	}
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kSeq {
		p.typeErr(n, "mounts", "list")
		return
	}
	type entry struct {
		f    []*string
		skip bool // unresolvable: never written, but still removes
	}
	var entries []entry
	var origins []config.Origin
	for i, it := range n.items {
		path := fmt.Sprintf("mounts[%d]", i)
		if it.kind != kSeq {
			// cloud-init: "Mount option not a list, ignoring".
			p.warnf(it.origin, "%s: not a list: ignored", path)
			continue
		}
		if len(it.items) == 0 || len(it.items) > 6 {
			p.errorf(it.origin, "%s: expected 1 to 6 fields (fs_spec, fs_file, fs_vfstype, fs_mntops, fs_freq, fs_passno), got %d", path, len(it.items))
			return
		}
		f := make([]*string, 6)
		for j, tok := range it.items {
			if tok.kind == kNull {
				if j == 0 {
					p.errorf(tok.origin, "%s[0]: fs_spec is null", path)
					return
				}
				f[j] = fields[j]
				continue
			}
			s, ok := p.str(tok, fmt.Sprintf("%s[%d]", path, j))
			if !ok {
				return
			}
			f[j] = &s
		}
		for j := len(it.items); j < 6; j++ {
			f[j] = fields[j]
		}
		e := entry{f: f}
		spec := *f[0]
		if spec == "ephemeral" {
			spec = "ephemeral0" // cloud-init's alias
		}
		dev, _, _ := strings.Cut(spec, ".") // ephemeral0.1: partition 1 of ephemeral0
		switch {
		case networkDevice().MatchString(spec):
		case metaDevice(dev):
			e.skip = true
			if f[1] != nil {
				p.warnf(it.items[0].origin, "%s: %s is resolved only by a cloud's block-device-mapping, which provision does not read: skipped", path, spec)
			}
		case shortDevice().MatchString(spec):
			spec = "/dev/" + spec
		}
		f[0] = &spec
		entries = append(entries, e)
		origins = append(origins, it.origin)
	}
	// cloud-init's remove_nonexistent_devices: from the end, a null mount
	// point drops its own entry and every earlier one of the same device.
	drop := map[string]bool{}
	keep := make([]bool, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.f[1] == nil || drop[*e.f[0]] {
			drop[*e.f[0]] = true
			continue
		}
		keep[i] = !e.skip
	}
	m := &config.Mounts{Origin: n.origin}
	for i, e := range entries {
		if !keep[i] {
			continue
		}
		path := fmt.Sprintf("mounts: %s", *e.f[0])
		for j, name := range []string{"fs_vfstype", "fs_mntops", "fs_freq", "fs_passno"} {
			v := e.f[j+2]
			switch {
			case v == nil:
				p.errorf(origins[i], "%s: %s is null here and in mount_default_fields", path, name)
				return
			case *v == "" || strings.ContainsAny(*v, " \t\n\\#"):
				p.errorf(origins[i], "%s: %s %q is empty or has a blank, a backslash or '#', which fstab cannot hold", path, name, *v)
				return
			case j >= 2 && !numberField().MatchString(*v):
				p.errorf(origins[i], "%s: %s %q is not a number", path, name, *v)
				return
			}
		}
		if strings.ContainsAny(*e.f[0]+*e.f[1], "\n") || *e.f[0] == "" || *e.f[1] == "" {
			p.errorf(origins[i], "%s: fs_spec and fs_file must be non-empty single lines", path)
			return
		}
		m.Entries = append(m.Entries, config.MountEntry{
			Origin: origins[i], Spec: *e.f[0], File: *e.f[1],
			VfsType: *e.f[2], Options: *e.f[3], Freq: *e.f[4], Passno: *e.f[5],
		})
	}
	p.cfg.Mounts = m
}

// humanSize is cloud-init's util.human2bytes: a number with an optional
// B, K, M, G or T (powers of 1024, also as KB, KiB...), or an integer.
var humanSize = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+)?\.?[0-9]+[BKMGT]$`) })

func (p *parser) size(n *node, path string) (int64, bool) {
	switch n.kind {
	case kInt:
		v, err := strconv.ParseInt(n.value, 0, 64)
		if err != nil || v < 0 {
			p.errorf(n.origin, "%s: %s is not a size in bytes", path, n.value)
			return 0, false
		}
		return v, true
	case kStr:
		s := strings.TrimSuffix(n.value, "iB")
		if s == n.value {
			if t := strings.TrimSuffix(s, "B"); t != "" && strings.ContainsAny(t[len(t)-1:], "KMGT") {
				s = t // 512MB is 512M, as cloud-init reads it
			}
		}
		if !humanSize().MatchString(s) {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil && v >= 0 {
				return v, true
			}
			p.errorf(n.origin, "%s: %q is not a size (bytes, or a number with B, K, M, G or T)", path, n.value)
			return 0, false
		}
		mult := map[byte]float64{'B': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}[s[len(s)-1]]
		f, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || f*mult >= math.MaxInt64/2 {
			p.errorf(n.origin, "%s: %q is not a size", path, n.value)
			return 0, false
		}
		return int64(f * mult), true
	}
	p.typeErr(n, path, "size")
	return 0, false
}

// swap reads cloud-init's swap: filename (default /swap.img), size
// ("auto", bytes or 1G-style; 0 or none: no swap file) and maxsize.
func (p *parser) swap(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		// cloud-init: "input for swap config was not a dict."
		p.warnf(n.origin, "swap: not a mapping: ignored")
		return
	}
	s := &config.Swap{Origin: n.origin, Filename: "/swap.img"}
	for i, k := range n.keys {
		v := n.vals[i]
		path := "swap." + k.value
		ok := true
		switch k.value {
		case "filename":
			if s.Filename, ok = p.str(v, path); ok && !strings.HasPrefix(s.Filename, "/") {
				p.errorf(v.origin, "%s: %q is not an absolute path", path, s.Filename)
				ok = false
			} else if ok && strings.ContainsAny(s.Filename, " \t\n\\") {
				p.errorf(v.origin, "%s: %q has a blank or a backslash", path, s.Filename)
				ok = false
			}
		case "size":
			if v.kind == kStr && v.value == "auto" {
				s.Auto = true
			} else if v.kind != kNull {
				s.Size, ok = p.size(v, path)
			}
		case "maxsize":
			if v.kind != kNull {
				s.MaxSize, ok = p.size(v, path)
			}
		default:
			p.warnf(k.origin, "unknown swap key %q", k.value)
		}
		if !ok {
			return
		}
	}
	if s.Size == 0 && !s.Auto {
		return // cloud-init: "no need to setup swap"
	}
	p.cfg.Swap = s
}
