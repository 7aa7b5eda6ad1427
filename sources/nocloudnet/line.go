// Package nocloudnet is the NoCloud "line" source: cloud-init's
// `ds=nocloud;s=URL;i=ID;h=HOST` given on the kernel command line or in the
// SMBIOS system serial number. It fetches the seed named by s= (http, https,
// file:// or an absolute path) and turns i=, h= and other keys into a small
// meta-data document that overrides the seed's meta-data.
package nocloudnet

import (
	"maps"
	"strings"

	"github.com/provision-dev/provision/sources"
)

// Line is what a NoCloud line says.
type Line struct {
	// Keys maps long key names (seedfrom, instance-id, local-hostname, and
	// any other key=value the user wrote) to their values.
	Keys map[string]string
	// DSMode is "local" or "net", as cloud-init decides it: an explicit
	// dsmode= wins, else the seed's scheme, else ds=nocloud is local and
	// ds=nocloud-net is net.
	DSMode string
	// From names where the line was found: "cmdline", "dmi" or both
	// joined with "+" (the command line wins key by key).
	From string
}

// Seed is the seedfrom value ("" when none).
func (l Line) Seed() string { return l.Keys["seedfrom"] }

// shortKeys are cloud-init's short forms (DataSourceNoCloud s2l).
var shortKeys = map[string]string{"h": "local-hostname", "i": "instance-id", "s": "seedfrom"}

// ParseWords reads a NoCloud line out of whitespace-separated words (the
// kernel command line, or the words of a DMI serial). It follows cloud-init's
// parse_cmdline_data: a word "ds=nocloud" or "ds=nocloud-net", alone or
// followed by ";key=value" pairs; when several such words appear the last
// one is used. Pairs without "=" are ignored, as are empty pairs.
func ParseWords(words []string) (Line, bool) {
	last, id := "", ""
	for _, w := range words {
		for _, ds := range []string{"ds=nocloud", "ds=nocloud-net"} {
			if w == ds || strings.HasPrefix(w, ds+";") {
				last, id = w, ds
			}
		}
	}
	if id == "" {
		return Line{}, false
	}
	l := Line{Keys: map[string]string{}}
	pairs := strings.Split(last, ";")[1:]
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			continue
		}
		if long, ok := shortKeys[k]; ok {
			k = long
		}
		l.Keys[k] = v
	}
	l.DSMode = dsMode(l.Keys, id)
	return l, true
}

func dsMode(keys map[string]string, id string) string {
	if m, ok := keys["dsmode"]; ok {
		return m
	}
	seed := keys["seedfrom"]
	for _, p := range []string{"http://", "https://", "ftp://", "ftps://"} {
		if strings.HasPrefix(seed, p) {
			return "net"
		}
	}
	if strings.HasPrefix(seed, "file://") || strings.HasPrefix(seed, "/") {
		return "local"
	}
	if id == "ds=nocloud-net" {
		return "net"
	}
	return "local"
}

// ParseLine reads a NoCloud line from one string (a DMI serial).
func ParseLine(s string) (Line, bool) { return ParseWords(strings.Fields(s)) }

// FromFacts finds the NoCloud line in the DMI serial and on the kernel
// command line; like cloud-init, the command line's keys override the
// serial's. __dmi.<key>__ placeholders in the seed are filled from the facts.
func FromFacts(f *sources.Facts) (Line, bool) {
	if f == nil {
		return Line{}, false
	}
	dmiLine, okDMI := ParseLine(f.DMI["product_serial"])
	cmdLine, okCmd := ParseWords(f.Cmdline)
	var l Line
	switch {
	case okDMI && okCmd:
		l = dmiLine
		maps.Copy(l.Keys, cmdLine.Keys)
		// cloud-init merges the two meta-data dicts, dsmode included.
		l.DSMode = cmdLine.DSMode
		l.From = "dmi+cmdline"
	case okCmd:
		l, l.From = cmdLine, "cmdline"
	case okDMI:
		l, l.From = dmiLine, "dmi"
	default:
		return Line{}, false
	}
	if s := l.Seed(); s != "" {
		l.Keys["seedfrom"] = SubstDMI(s, f.DMI)
	}
	return l, true
}

// dmidecodeNames maps cloud-init's __dmi.<name>__ names (dmidecode's
// keywords) to /sys/class/dmi/id file names.
var dmidecodeNames = map[string]string{
	"baseboard-asset-tag":     "board_asset_tag",
	"baseboard-manufacturer":  "board_vendor",
	"baseboard-product-name":  "board_name",
	"baseboard-serial-number": "board_serial",
	"baseboard-version":       "board_version",
	"bios-release-date":       "bios_date",
	"bios-vendor":             "bios_vendor",
	"bios-version":            "bios_version",
	"chassis-asset-tag":       "chassis_asset_tag",
	"chassis-manufacturer":    "chassis_vendor",
	"chassis-serial-number":   "chassis_serial",
	"chassis-version":         "chassis_version",
	"system-manufacturer":     "sys_vendor",
	"system-product-name":     "product_name",
	"system-serial-number":    "product_serial",
	"system-uuid":             "product_uuid",
	"system-version":          "product_version",
}

// SubstDMI fills __dmi.<name>__ placeholders. Names are cloud-init's
// (dmidecode keywords such as system-serial-number); the sysfs file names
// (product_serial) are accepted too. Unknown names are left as they are;
// known names with no value become empty, as in cloud-init.
func SubstDMI(s string, dmi map[string]string) string {
	if !strings.Contains(s, "__dmi.") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "__dmi.")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		rest := s[i+len("__dmi."):]
		name, file, ok := matchDMI(rest)
		if !ok {
			b.WriteString("__dmi.")
			s = rest
			continue
		}
		b.WriteString(dmi[file])
		s = rest[len(name)+2:]
	}
}

// matchDMI finds which known name rest starts with, followed by "__".
func matchDMI(rest string) (name, file string, ok bool) {
	for n, f := range dmidecodeNames {
		for _, cand := range []string{n, f} {
			if strings.HasPrefix(rest, cand+"__") && len(cand) > len(name) {
				name, file, ok = cand, f, true
			}
		}
	}
	return name, file, ok
}
