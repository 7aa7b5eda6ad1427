package ignition

import (
	"path"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
	"github.com/provision-dev/provision/provision/config"
)

// unitSuffixes are the unit types Ignition accepts (systemd's list, plus
// the long-gone .snapshot Ignition still allows; config.Validate refuses it).
var unitSuffixes = map[string]bool{
	".service": true, ".socket": true, ".device": true, ".mount": true, ".automount": true,
	".swap": true, ".target": true, ".path": true, ".timer": true, ".snapshot": true,
	".slice": true, ".scope": true,
}

const systemdUnitDir = "/etc/systemd/system/"

func (p *parser) unit(n *node, upath string, seen map[string]int) {
	f := p.fields(n, upath, map[string]int{"name": 0, "enabled": 0, "mask": 0, "contents": 0, "dropins": 0})
	if f == nil {
		return
	}
	name := p.str(f, upath, "name")
	if name == nil || *name == "" {
		p.failf(n.off, upath, "name is required")
		return
	}
	if !unitSuffixes[path.Ext(*name)] || strings.Contains(*name, "/") {
		p.failf(f["name"].off, join(upath, "name"), "%q is not a systemd unit name (it needs a suffix such as .service)", *name)
		return
	}
	if prev, dup := seen[*name]; dup {
		p.failf(n.off, upath, "unit %s is listed twice (also at %s)", *name, p.lineCol(prev))
		return
	}
	seen[*name] = n.off
	u := config.Unit{Origin: p.at(n.off), Name: *name, Enabled: p.boolean(f, upath, "enabled")}
	if m := p.boolean(f, upath, "mask"); m != nil {
		u.Mask, u.Unmask = *m, !*m
	}
	if c := p.str(f, upath, "contents"); c != nil {
		opts, ok := p.unitContents(f["contents"].off, join(upath, "contents"), *c)
		// Ignition writes no unit file for empty contents.
		if *c != "" {
			u.Contents = c
		}
		if ok && *c != "" && u.Enabled != nil && *u.Enabled && !hasInstall(opts) {
			p.warn(f["contents"].off, join(upath, "contents"),
				"unit %s is to be enabled but has no [Install] section, so enabling it links nothing", *name)
		}
	}
	if u.Contents != nil {
		p.claimUnitPath(systemdUnitDir+*name, n.off)
	}
	dseen := map[string]int{}
	for i, d := range p.list(f, upath, "dropins") {
		dp := index(join(upath, "dropins"), i)
		df := p.fields(d, dp, map[string]int{"name": 0, "contents": 0})
		if df == nil {
			continue
		}
		dn := p.str(df, dp, "name")
		if dn == nil || *dn == "" {
			p.failf(d.off, dp, "name is required")
			continue
		}
		if path.Ext(*dn) != ".conf" || strings.Contains(*dn, "/") {
			p.failf(df["name"].off, join(dp, "name"), "drop-in name %q must be a file name ending in .conf", *dn)
			continue
		}
		if prev, dup := dseen[*dn]; dup {
			p.failf(d.off, dp, "drop-in %s is listed twice (also at %s)", *dn, p.lineCol(prev))
			continue
		}
		dseen[*dn] = d.off
		c := p.str(df, dp, "contents")
		if c == nil {
			// Ignition skips a drop-in without contents.
			continue
		}
		p.unitContents(df["contents"].off, join(dp, "contents"), *c)
		u.Dropins = append(u.Dropins, config.Dropin{Name: *dn, Contents: *c})
		p.claimUnitPath(systemdUnitDir+*name+".d/"+*dn, d.off)
	}
	p.out.Units = append(p.out.Units, u)
}

// unitContents checks unit syntax the way Ignition does (go-systemd's
// parser), so a config Ignition rejects is rejected here too.
func (p *parser) unitContents(off int, path, contents string) ([]*unit.UnitOption, bool) {
	opts, err := unit.DeserializeOptions(strings.NewReader(contents))
	if err != nil {
		p.failf(off, path, "invalid unit contents: %v", err)
		return nil, false
	}
	return opts, true
}

func hasInstall(opts []*unit.UnitOption) bool {
	for _, o := range opts {
		if o.Section == "Install" {
			return true
		}
	}
	return false
}

func (p *parser) claimUnitPath(file string, off int) {
	if p.unitPaths == nil {
		p.unitPaths = map[string]int{}
	}
	p.unitPaths[file] = off
}

// crossChecks are Ignition's whole-config rules: storage must not write a
// path that a systemd unit or drop-in writes.
func (p *parser) crossChecks() {
	files := make([]string, 0, len(p.unitPaths))
	for file := range p.unitPaths {
		files = append(files, file)
	}
	sort.Strings(files)
	for _, file := range files {
		uoff := p.unitPaths[file]
		if def, ok := p.nodes["node\x00"+file]; ok {
			p.failf(def.off, "storage", "%s is also written by the systemd unit at %s", file, p.lineCol(uoff))
		}
	}
}
