package network

import (
	"net/netip"
	"strconv"
	"strings"
)

// NetworkdDir is where systemd-networkd (and udev, for .link) read
// administrator configuration.
const NetworkdDir = "/etc/systemd/network"

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// RenderNetworkd renders a .network per interface, a .netdev per bond,
// bridge and VLAN (cloud-init writes none, so its bonds never exist), and a
// .link per renamed device.
func RenderNetworkd(m *Model) ([]File, error) {
	var out []File
	for _, i := range m.Interfaces {
		base := NetworkdDir + "/10-cloud-init-" + i.ID
		if i.Rename {
			out = append(out, linkFile(i))
		}
		if i.Kind != Ethernet {
			out = append(out, File{Path: base + ".netdev", Data: netdev(m, i).bytes(), Mode: 0o644, Detail: "create " + string(i.Kind) + " " + i.Name})
		}
		out = append(out, File{Path: base + ".network", Data: networkFile(m, i).bytes(), Mode: 0o644, Detail: describeIface(m, i)})
	}
	return out, nil
}

func netdev(m *Model, i *Interface) *ini {
	f := &ini{}
	nd := f.sec("NetDev")
	nd.set("Name", i.Name)
	nd.set("Kind", string(i.Kind))
	if i.MAC != "" {
		nd.set("MACAddress", strings.ToLower(i.MAC))
	}
	switch i.Kind {
	case Bond:
		s := f.sec("Bond")
		b := i.Bond
		if b.Mode != "" {
			s.set("Mode", b.Mode)
		}
		opt := func(k, v string) {
			if v != "" {
				s.set(k, v)
			}
		}
		msec := func(k string, v *int) {
			if v != nil {
				s.set(k, strconv.Itoa(*v)+"ms")
			}
		}
		opt("TransmitHashPolicy", b.XmitHashPolicy)
		opt("LACPTransmitRate", b.LACPRate)
		msec("MIIMonitorSec", b.MIIMon)
		msec("UpDelaySec", b.UpDelay)
		msec("DownDelaySec", b.DownDelay)
		opt("AdSelect", b.ADSelect)
		s.setInt("MinLinks", b.MinLinks)
		opt("PrimaryReselectPolicy", b.PrimaryReselect)
		opt("FailOverMACPolicy", b.FailOverMAC)
		msec("ARPIntervalSec", b.ARPInterval)
		if len(b.ARPIPTargets) > 0 {
			s.set("ARPIPTargets", joinAddrs(b.ARPIPTargets, " ", false))
		}
		opt("ARPValidate", b.ARPValidate)
		if b.AllSlavesActive != nil {
			s.set("AllSlavesActive", yesNo(*b.AllSlavesActive))
		}
		s.setInt("GratuitousARP", b.GratuitousARP)
		s.setInt("PacketsPerSlave", b.PacketsPerSlave)
		if b.LearnPacketInter != nil {
			s.set("LearnPacketIntervalSec", strconv.Itoa(*b.LearnPacketInter))
		}
	case Bridge:
		s := f.sec("Bridge")
		p := i.Bridge
		if p.STP != nil {
			s.set("STP", yesNo(*p.STP))
		}
		sec := func(k string, v *int) {
			if v != nil {
				s.set(k, strconv.Itoa(*v))
			}
		}
		sec("ForwardDelaySec", p.ForwardDelay)
		sec("HelloTimeSec", p.HelloTime)
		sec("MaxAgeSec", p.MaxAge)
		sec("AgeingTimeSec", p.AgeingTime)
		s.setInt("Priority", p.Priority)
	case VLAN:
		f.sec("VLAN").set("Id", strconv.Itoa(i.VLANID))
	}
	return f
}

func networkFile(m *Model, i *Interface) *ini {
	f := &ini{}
	match := f.sec("Match")
	switch {
	case i.Name != "":
		match.set("Name", i.Name)
	case i.MatchName != "":
		match.set("Name", i.MatchName)
	}
	if i.Kind == Ethernet && i.MatchMAC != "" {
		match.set("PermanentMACAddress", strings.ToLower(i.MatchMAC))
	}
	if i.MatchDriver != "" {
		match.set("Driver", i.MatchDriver)
	}

	link := f.sec("Link")
	if i.Kind == Ethernet && i.MAC != "" {
		link.set("MACAddress", strings.ToLower(i.MAC))
	}
	if i.MTU > 0 {
		link.set("MTUBytes", strconv.Itoa(i.MTU))
	}
	if i.Optional {
		link.set("RequiredForOnline", "no")
	}

	nw := f.sec("Network")
	if i.Controller != "" {
		ctl := m.byID(i.Controller)
		if ctl.Kind == Bond {
			nw.set("Bond", ctl.Name)
			if ctl.Bond.Primary == i.ID {
				nw.set("PrimarySlave", "yes")
			}
		} else {
			nw.set("Bridge", ctl.Name)
		}
		// A port has no addresses of its own, not even link-local.
		nw.set("LinkLocalAddressing", "no")
	} else {
		networkdL3(f, nw, i)
	}
	for _, c := range m.Interfaces {
		if c.Kind == VLAN && c.Link == i.ID {
			nw.set("VLAN", c.Name)
		}
	}
	if i.Controller != "" && (i.PathCost != nil || i.PortPriority != nil) {
		bp := f.add("Bridge")
		bp.setInt("Cost", i.PathCost)
		bp.setInt("Priority", i.PortPriority)
	}
	return f
}

func networkdL3(f *ini, nw *section, i *Interface) {
	switch {
	case i.DHCP4 && i.IPv6 == IPv6DHCP:
		nw.set("DHCP", "yes")
	case i.DHCP4:
		nw.set("DHCP", "ipv4")
	case i.IPv6 == IPv6DHCP:
		nw.set("DHCP", "ipv6")
	}
	switch {
	case i.AcceptRA != nil:
		nw.set("IPv6AcceptRA", yesNo(*i.AcceptRA))
	case i.IPv6 != IPv6None:
		// networkd turns RA off on forwarding links; SLAAC was asked for.
		nw.set("IPv6AcceptRA", "yes")
	}
	for _, a := range i.Addresses {
		nw.set("Address", a.String())
	}
	routes := i.Routes
	for _, g := range []netip.Addr{i.Gateway4, i.Gateway6} {
		switch {
		case !g.IsValid():
		case staticIn(i, g.Is4()):
			nw.set("Gateway", g.String())
		default:
			routes = append([]Route{{To: netip.PrefixFrom(unspecified(g.Is4()), 0), Via: g}}, routes...)
		}
	}
	for _, d := range i.DNS.Servers {
		nw.set("DNS", d.String())
	}
	if len(i.DNS.Search) > 0 {
		nw.set("Domains", strings.Join(i.DNS.Search, " "))
	}
	for _, r := range routes {
		s := f.add("Route")
		s.set("Destination", r.To.String())
		if r.Via.IsValid() {
			s.set("Gateway", r.Via.String())
		}
		// networkd assumes GatewayOnLink for a gateway on a link without a
		// static address of its family (and logs that it did); say it.
		if r.OnLink || r.Via.IsValid() && !staticIn(i, r.Via.Is4()) {
			s.set("GatewayOnLink", "yes")
		}
		s.setInt("Metric", r.Metric)
		s.setInt("Table", r.Table)
	}
}

// staticIn reports whether the interface has a static address of a family.
func staticIn(i *Interface, v4 bool) bool {
	for _, a := range i.Addresses {
		if a.Addr().Is4() == v4 {
			return true
		}
	}
	return false
}

func unspecified(v4 bool) netip.Addr {
	if v4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}
