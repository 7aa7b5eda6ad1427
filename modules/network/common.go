package network

import "net/netip"

// Pieces the v1, v2 and OpenStack readers share: each format spells its
// keys its own way, but once a key is found the value means the same thing,
// so it is read and checked in one place.

// unwrapNetwork returns the top mapping of a cloud-init network config,
// looking through an outer "network:" key when the document has no
// "version" of its own (both v1 and v2 may come wrapped).
func unwrapNetwork(data any) (map[string]any, error) {
	top, err := asMap(data, "")
	if err != nil {
		return nil, err
	}
	if n, ok := top["network"]; ok && top["version"] == nil {
		if top, err = asMap(n, "network"); err != nil {
			return nil, err
		}
	}
	return top, nil
}

// optString reads the optional string keys in order, absent or null ones
// skipped; the last one given wins ("netmask" then "prefix"), "" if none.
func optString(m map[string]any, path string, keys ...string) (string, error) {
	s := ""
	for _, k := range keys {
		if v, ok := m[k]; ok && v != nil {
			var err error
			if s, err = asString(v, join(path, k)); err != nil {
				return "", err
			}
		}
	}
	return s, nil
}

// optMTU reads an optional (absent or null) "mtu"; 0 means not set.
func optMTU(m map[string]any, path string) (int, error) {
	if v, ok := m["mtu"]; ok && v != nil {
		return asInt(v, join(path, "mtu"), 68, 65536)
	}
	return 0, nil
}

// readVLAN sets the VLAN ID and parent link, both required, from the keys
// the format names them by.
func readVLAN(i *Interface, m map[string]any, path, idKey, linkKey string) error {
	var err error
	if i.VLANID, err = asInt(m[idKey], join(path, idKey), 0, 4094); err != nil {
		return err
	}
	if i.Link, err = asString(m[linkKey], join(path, linkKey)); err != nil {
		return err
	}
	return nil
}

// readBond sets i.Bond from the bond options in params (at ppath), in key
// order. option maps a key to the kernel option name: "" skips the key, an
// error refuses it.
func readBond(i *Interface, params map[string]any, ppath, path string, option func(key string) (string, error)) error {
	i.Bond = &BondParams{}
	for _, k := range sortedKeys(params) {
		opt, err := option(k)
		if err != nil {
			return err
		}
		if opt == "" {
			continue
		}
		if err := setBondOption(i.Bond, opt, params[k], join(ppath, k)); err != nil {
			return err
		}
	}
	return checkBond(i.Bond, path)
}

// readRoutes reads a list of v1-style routes (cloud-init v1 subnets and
// OpenStack networks share the spelling).
func readRoutes(v any, path string) ([]Route, error) {
	rl, err := asList(v, path)
	if err != nil {
		return nil, err
	}
	var out []Route
	for n, rv := range rl {
		rp := index(path, n)
		rm, err := asMap(rv, rp)
		if err != nil {
			return nil, err
		}
		r, err := v1Route(rm, rp)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// readDNS reads nameserver addresses and search domains. split lets a single
// string hold several space-separated words (cloud-init v1).
func readDNS(addrs, search any, apath, spath string, split bool) (DNS, error) {
	var d DNS
	al, err := asStringList(addrs, apath, split)
	if err != nil {
		return d, err
	}
	for n, s := range al {
		a, err := asAddr(s, index(apath, n))
		if err != nil {
			return d, err
		}
		d.add(DNS{Servers: []netip.Addr{a}})
	}
	sl, err := asStringList(search, spath, split)
	if err != nil {
		return d, err
	}
	if err := checkDomains(sl, spath); err != nil {
		return d, err
	}
	d.add(DNS{Search: sl})
	return d, nil
}

// membership is a controller's claim on a member, declared on the
// controller but stored on the member once every ID is known.
type membership struct{ controller, member, path string }

// resolveMembers sets each member's Controller; a member may be claimed
// twice by the same controller, not by two.
func resolveMembers(m *Model, members []membership) error {
	for _, ms := range members {
		i := m.byID(ms.member)
		if i == nil {
			return errAt(ms.path, "%s is not defined", ms.member)
		}
		if i.Controller != "" && i.Controller != ms.controller {
			return errAt(ms.path, "%s is already a member of %s", ms.member, i.Controller)
		}
		i.Controller = ms.controller
	}
	return nil
}

// setPortSetting parks a bridge port's priority (prio) or path cost on the
// bridge, keyed by member ID, until membership is known.
func setPortSetting(i *Interface, port string, prio bool, v any, path string) error {
	hi := int64(65535)
	if prio {
		hi = 63
	}
	n, err := intPtr(v, path, 0, hi)
	if err != nil {
		return err
	}
	if i.pendingPort == nil {
		i.pendingPort = map[string]portSettings{}
	}
	ps := i.pendingPort[port]
	if prio {
		ps.prio = n
	} else {
		ps.cost = n
	}
	i.pendingPort[port] = ps
	return nil
}

// applyPortSettings moves the parked bridge port settings onto the members;
// paramsPath names a bridge's parameters in error messages.
func applyPortSettings(m *Model, paramsPath func(id string) string) error {
	for _, i := range m.Interfaces {
		for id, v := range i.pendingPort {
			p := m.byID(id)
			if p == nil || p.Controller != i.ID {
				return errAt(paramsPath(i.ID), "%s is not a member of bridge %s", id, i.ID)
			}
			if v.prio != nil {
				p.PortPriority = v.prio
			}
			if v.cost != nil {
				p.PathCost = v.cost
			}
		}
		i.pendingPort = nil
	}
	return nil
}
