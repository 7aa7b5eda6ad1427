package network

import (
	"fmt"
	"net/netip"
	"strings"
)

// Kind is the type of an interface in the model.
type Kind string

// Interface kinds.
const (
	Ethernet Kind = "ethernet"
	Bond     Kind = "bond"
	Bridge   Kind = "bridge"
	VLAN     Kind = "vlan"
)

// IPv6Mode says how an interface gets IPv6 addresses besides static ones.
type IPv6Mode int

// IPv6 modes. SLAAC means router advertisements only (OpenStack
// ipv6_slaac, "method=auto"): never a static address.
const (
	IPv6None IPv6Mode = iota
	IPv6SLAAC
	IPv6DHCP
)

// Model is a parsed network configuration, independent of its source format
// and of the renderer.
type Model struct {
	Interfaces []*Interface
	// DNS and Routes not tied to an interface (cloud-init v1 "nameserver"
	// and "route" entries, OpenStack "services"). Resolve attaches them to
	// interfaces.
	DNS    DNS
	Routes []Route
}

// Interface is one link to configure.
type Interface struct {
	ID   string // the document's name for it; names the files written
	Kind Kind
	// Name is the kernel name: matched, created (virtual kinds) or given by
	// renaming the device MatchMAC finds (Rename). Empty when the device is
	// found by MAC, driver or glob only.
	Name        string
	Rename      bool
	MatchMAC    string
	MatchName   string // glob (netplan match.name)
	MatchDriver string
	MAC         string // address to set on the link
	MTU         int
	Optional    bool

	DHCP4     bool
	IPv6      IPv6Mode
	AcceptRA  *bool
	Addresses []netip.Prefix
	Gateway4  netip.Addr
	Gateway6  netip.Addr
	Routes    []Route
	DNS       DNS

	// Controller is the ID of the bond or bridge this link is a port of.
	Controller string
	// Bridge port settings (when Controller is a bridge).
	PortPriority, PathCost *int

	Bond   *BondParams
	Bridge *BridgeParams
	VLANID int
	Link   string // VLAN parent ID

	pendingPort map[string]portSettings // v2 bridge port settings, by member ID
}

// BondParams are the bond driver options that both renderers carry.
type BondParams struct {
	Mode             string
	MIIMon           *int // ms
	UpDelay          *int // ms
	DownDelay        *int // ms
	LACPRate         string
	XmitHashPolicy   string
	Primary          string // member ID
	ADSelect         string
	MinLinks         *int
	PrimaryReselect  string
	FailOverMAC      string
	ARPInterval      *int
	ARPIPTargets     []netip.Addr
	ARPValidate      string
	AllSlavesActive  *bool
	GratuitousARP    *int
	PacketsPerSlave  *int
	LearnPacketInter *int
}

// BridgeParams are the bridge options (times in seconds).
type BridgeParams struct {
	STP          *bool
	ForwardDelay *int
	HelloTime    *int
	MaxAge       *int
	AgeingTime   *int
	Priority     *int
}

// Route is a static route. A zero Via is a direct (on-link) route.
type Route struct {
	To     netip.Prefix
	Via    netip.Addr
	Metric *int
	Table  *int
	OnLink bool
}

// DNS is a set of resolvers and search domains.
type DNS struct {
	Servers []netip.Addr
	Search  []string
}

func (d *DNS) add(o DNS) {
	for _, s := range o.Servers {
		if !containsAddr(d.Servers, s) {
			d.Servers = append(d.Servers, s)
		}
	}
	for _, s := range o.Search {
		if !containsStr(d.Search, s) {
			d.Search = append(d.Search, s)
		}
	}
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// hasIPv4 reports whether the interface has any IPv4 configuration.
func (i *Interface) hasIPv4() bool {
	if i.DHCP4 {
		return true
	}
	for _, a := range i.Addresses {
		if a.Addr().Is4() {
			return true
		}
	}
	return false
}

// hasIPv6 reports whether the interface has any IPv6 configuration of its own.
func (i *Interface) hasIPv6() bool {
	if i.IPv6 != IPv6None || i.AcceptRA != nil && *i.AcceptRA {
		return true
	}
	for _, a := range i.Addresses {
		if a.Addr().Is6() {
			return true
		}
	}
	return false
}

// isPort reports whether the interface is enslaved to a bond or bridge (and
// so carries no IP configuration of its own).
func (i *Interface) isPort() bool { return i.Controller != "" }

func (m *Model) byID(id string) *Interface {
	for _, i := range m.Interfaces {
		if i.ID == id {
			return i
		}
	}
	return nil
}

// Resolve checks references and consistency and attaches the global DNS and
// routes to interfaces. cloud-init's networkd renderer copies a global route
// into every interface; a route belongs only where its gateway is on-link.
func (m *Model) Resolve() error {
	seenID := map[string]bool{}
	seenName := map[string]string{}
	for _, i := range m.Interfaces {
		if seenID[i.ID] {
			return fmt.Errorf("%s: defined twice", i.ID)
		}
		seenID[i.ID] = true
		if !validFileID(i.ID) {
			return fmt.Errorf("%q: not usable as an interface or file name", i.ID)
		}
		if i.Name != "" {
			if !validIfName(i.Name) {
				return fmt.Errorf("%s: invalid interface name %q (1-15 characters, no '/', ':' or spaces)", i.ID, i.Name)
			}
			if other, ok := seenName[i.Name]; ok {
				return fmt.Errorf("%s and %s both use the interface name %s", other, i.ID, i.Name)
			}
			seenName[i.Name] = i.ID
		}
		if i.Kind != Ethernet && i.Name == "" {
			return fmt.Errorf("%s: a %s needs an interface name", i.ID, i.Kind)
		}
		if i.Kind == Ethernet && i.Name == "" && i.MatchMAC == "" && i.MatchName == "" && i.MatchDriver == "" {
			return fmt.Errorf("%s: no way to find the device (no name, MAC or match)", i.ID)
		}
		if i.MTU < 0 || i.MTU > 65536 || i.MTU > 0 && i.MTU < 68 {
			return fmt.Errorf("%s: mtu %d out of range (68-65536)", i.ID, i.MTU)
		}
	}
	for _, i := range m.Interfaces {
		if i.Controller != "" {
			c := m.byID(i.Controller)
			if c == nil || c.Kind != Bond && c.Kind != Bridge {
				return fmt.Errorf("%s: %s is not a bond or bridge", i.ID, i.Controller)
			}
			if c == i {
				return fmt.Errorf("%s: cannot be a member of itself", i.ID)
			}
			if i.hasIPv4() || i.hasIPv6() || len(i.Routes) > 0 || len(i.DNS.Servers) > 0 {
				return fmt.Errorf("%s: is a member of %s and cannot have IP configuration of its own", i.ID, c.ID)
			}
			if c.Kind == Bond && i.Kind != Ethernet {
				return fmt.Errorf("%s: a bond's members must be ethernet devices, %s is a %s", c.ID, i.ID, i.Kind)
			}
		}
		if i.Kind == VLAN {
			p := m.byID(i.Link)
			if p == nil {
				return fmt.Errorf("%s: vlan link %q is not defined", i.ID, i.Link)
			}
			if p.Kind == VLAN {
				return fmt.Errorf("%s: vlan link %s is itself a vlan", i.ID, p.ID)
			}
			if i.VLANID < 0 || i.VLANID > 4094 {
				return fmt.Errorf("%s: vlan id %d out of range (0-4094)", i.ID, i.VLANID)
			}
		}
		if i.Bond != nil && i.Bond.Primary != "" {
			p := m.byID(i.Bond.Primary)
			if p == nil || p.Controller != i.ID {
				return fmt.Errorf("%s: primary %s is not a member of the bond", i.ID, i.Bond.Primary)
			}
			if p.Name == "" {
				return fmt.Errorf("%s: primary %s has no interface name (matched by MAC only); give it one", i.ID, p.ID)
			}
		}
	}
	// A bond or bridge inside a bridge is fine; a cycle is not.
	for _, i := range m.Interfaces {
		seen := map[string]bool{}
		for c := i; c != nil && c.Controller != ""; c = m.byID(c.Controller) {
			if seen[c.ID] {
				return fmt.Errorf("%s: bond/bridge membership forms a cycle", i.ID)
			}
			seen[c.ID] = true
		}
	}
	for _, i := range m.Interfaces {
		if err := i.checkGateways(); err != nil {
			return err
		}
	}
	if err := m.placeRoutes(); err != nil {
		return err
	}
	return m.placeDNS()
}

func (i *Interface) checkGateways() error {
	if i.Gateway4.IsValid() && !i.Gateway4.Is4() {
		return fmt.Errorf("%s: gateway4 %s is not IPv4", i.ID, i.Gateway4)
	}
	if i.Gateway6.IsValid() && !i.Gateway6.Is6() {
		return fmt.Errorf("%s: gateway6 %s is not IPv6", i.ID, i.Gateway6)
	}
	if i.Gateway4.IsValid() && !i.hasIPv4() {
		return fmt.Errorf("%s: gateway4 %s without IPv4 addressing", i.ID, i.Gateway4)
	}
	if i.Gateway6.IsValid() && !i.hasIPv6() {
		return fmt.Errorf("%s: gateway6 %s without IPv6 addressing", i.ID, i.Gateway6)
	}
	// A nameserver of a family the interface does not configure is valid:
	// networkd uses it, cloud-init writes it; the NetworkManager renderer
	// decides what its profiles can carry (nmIPv6, nmIPv4).
	if len(i.DNS.Search) > 0 && !i.hasIPv4() && !i.hasIPv6() && !i.isPort() {
		return fmt.Errorf("%s: search domains without IP configuration", i.ID)
	}
	for _, r := range i.Routes {
		if err := r.check(); err != nil {
			return fmt.Errorf("%s: %w", i.ID, err)
		}
		if r.To.Addr().Is4() && !i.hasIPv4() {
			return fmt.Errorf("%s: IPv4 route to %s without IPv4 addressing", i.ID, r.To)
		}
		if r.To.Addr().Is6() && !i.hasIPv6() {
			return fmt.Errorf("%s: IPv6 route to %s without IPv6 addressing", i.ID, r.To)
		}
	}
	return nil
}

func (r Route) check() error {
	if !r.To.IsValid() {
		return fmt.Errorf("route without destination")
	}
	if r.Via.IsValid() && r.Via.Is4() != r.To.Addr().Is4() {
		return fmt.Errorf("route to %s via %s mixes IPv4 and IPv6", r.To, r.Via)
	}
	if r.Metric != nil && (*r.Metric < 0 || *r.Metric > 0xffffffff) {
		return fmt.Errorf("route to %s: metric %d out of range", r.To, *r.Metric)
	}
	if r.Table != nil && (*r.Table < 1 || *r.Table > 0xffffffff) {
		return fmt.Errorf("route to %s: table %d out of range", r.To, *r.Table)
	}
	return nil
}

// l3 lists the interfaces that carry IP configuration (not ports).
func (m *Model) l3() []*Interface {
	var out []*Interface
	for _, i := range m.Interfaces {
		if !i.isPort() && (i.hasIPv4() || i.hasIPv6()) {
			out = append(out, i)
		}
	}
	return out
}

// placeRoutes gives each global route to the interface with a static
// address whose subnet contains the gateway; with a single IP interface
// there is no choice to make.
func (m *Model) placeRoutes() error {
	for _, r := range m.Routes {
		if err := r.check(); err != nil {
			return err
		}
		v4 := r.To.Addr().Is4()
		var cands []*Interface
		for _, i := range m.l3() {
			if v4 && i.hasIPv4() || !v4 && i.hasIPv6() {
				cands = append(cands, i)
			}
		}
		var owner *Interface
		if r.Via.IsValid() && !r.Via.IsLinkLocalUnicast() {
			for _, i := range cands {
				for _, a := range i.Addresses {
					if a.Masked().Contains(r.Via) {
						owner = i
						break
					}
				}
				if owner != nil {
					break
				}
			}
		}
		if owner == nil && len(cands) == 1 {
			owner = cands[0]
		}
		if owner == nil {
			via := "no gateway"
			if r.Via.IsValid() {
				via = "gateway " + r.Via.String()
			}
			if len(cands) == 0 {
				return fmt.Errorf("route to %s (%s): no interface has %s configured", r.To, via, family(v4))
			}
			return fmt.Errorf("route to %s (%s): no interface has a static subnet containing the gateway, and %d interfaces could carry it", r.To, via, len(cands))
		}
		owner.Routes = append(owner.Routes, r)
	}
	m.Routes = nil
	return nil
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}

// placeDNS adds the global resolvers to every IP interface of the matching
// family: that is what a global resolv.conf means. A resolver of a family
// no interface configures goes on every IP interface, as an interface's own
// one would (see checkGateways).
func (m *Model) placeDNS() error {
	if len(m.DNS.Servers) == 0 && len(m.DNS.Search) == 0 {
		return nil
	}
	l3 := m.l3()
	if len(l3) == 0 {
		return fmt.Errorf("global nameservers given but no interface has IP configuration")
	}
	for _, s := range m.DNS.Servers {
		placed := false
		for _, i := range l3 {
			if s.Is4() && i.hasIPv4() || s.Is6() && i.hasIPv6() {
				i.DNS.add(DNS{Servers: []netip.Addr{s}})
				placed = true
			}
		}
		if !placed {
			for _, i := range l3 {
				i.DNS.add(DNS{Servers: []netip.Addr{s}})
			}
		}
	}
	for _, i := range l3 {
		i.DNS.add(DNS{Search: m.DNS.Search})
	}
	m.DNS = DNS{}
	return nil
}

// validIfName is the kernel's dev_valid_name.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n\r\x00")
}

// validFileID accepts IDs that can name a file and a connection.
func validFileID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." || strings.HasPrefix(s, ".") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '/' || r == '\\' || r == 0x7f || r == '*' || r == '?' || r == '[' || r == ']' {
			return false
		}
	}
	return true
}
