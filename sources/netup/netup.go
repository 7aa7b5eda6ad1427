// Package netup brings the network up in the initrd when a source needs it
// and nothing else did: every NIC with carrier is set up and takes a DHCPv4
// lease (address, default route, resolv.conf). It runs only when called and
// every wait in it is bounded.
//
// It works in the network namespace of the calling thread: a caller that
// switched namespaces must hold runtime.LockOSThread across Up.
package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Defaults for Config's zero values.
const (
	DefaultCarrierTimeout = 10 * time.Second
	DefaultDHCPTimeout    = 30 * time.Second
	// carrierGrace: once one NIC has carrier, the others get this long to
	// catch up, so an unplugged port does not cost the whole timeout.
	carrierGrace = 2 * time.Second
)

// Config tunes Up.
type Config struct {
	// ResolvConf is where nameservers are written ("" = do not write);
	// /etc/resolv.conf in the initrd.
	ResolvConf string
	// Interfaces restricts Up to these names (empty = every candidate).
	Interfaces []string
	// CarrierTimeout bounds the wait for link carrier.
	CarrierTimeout time.Duration
	// DHCPTimeout bounds the whole DHCP exchange on each interface.
	DHCPTimeout time.Duration
	// Logf receives one line per step; nil discards.
	Logf func(format string, args ...any)
}

// Lease is what was configured on one interface.
type Lease struct {
	Interface string
	Address   net.IPNet
	Router    net.IP // nil when none was offered
	DNS       []net.IP
	Search    []string
	MTU       int
	Server    net.IP
	Duration  time.Duration
	Routes    []*dhcpv4.Route // RFC 3442 classless routes, when offered
}

// Result says what Up did, interface by interface.
type Result struct {
	Leases  []Lease
	Skipped map[string]string // interface -> why it was left alone
	Failed  map[string]error  // interface -> DHCP or configuration error
}

// ErrNoCarrier means no candidate interface had carrier in time.
var ErrNoCarrier = errors.New("no network interface with carrier")

// Up brings up the network. It returns an error only when no interface ended
// up configured by it and none was configured already; per-interface
// failures are in Result.Failed.
func Up(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.CarrierTimeout <= 0 {
		cfg.CarrierTimeout = DefaultCarrierTimeout
	}
	if cfg.DHCPTimeout <= 0 {
		cfg.DHCPTimeout = DefaultDHCPTimeout
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	// The handle's sockets live in the caller's namespace from here on, so
	// the goroutines below may run on any thread. Only NETLINK_ROUTE: the
	// library's default also opens XFRM and NETFILTER sockets, which fail
	// with EPROTONOSUPPORT in an initrd where those are unloaded modules.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netup: netlink: %w", err)
	}
	defer h.Close()
	res := &Result{Skipped: map[string]string{}, Failed: map[string]error{}}

	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netup: listing links: %w", err)
	}
	var cands []netlink.Link
	configured := 0
	for _, l := range links {
		a := l.Attrs()
		if len(cfg.Interfaces) > 0 && !slices.Contains(cfg.Interfaces, a.Name) {
			continue
		}
		switch why := skipReason(h, l); why {
		case "":
			cands = append(cands, l)
		case reasonConfigured:
			configured++
			res.Skipped[a.Name] = why
		default:
			res.Skipped[a.Name] = why
		}
	}
	for name, why := range res.Skipped {
		logf("netup: %s: skipped (%s)", name, why)
	}
	if len(cands) == 0 {
		if configured > 0 {
			return res, nil
		}
		return res, fmt.Errorf("netup: no interface to configure: %w", ErrNoCarrier)
	}

	up := waitCarrier(ctx, h, cands, cfg.CarrierTimeout, logf, res)
	if len(up) == 0 {
		if configured > 0 {
			return res, nil
		}
		return res, fmt.Errorf("netup: %w within %s", ErrNoCarrier, cfg.CarrierTimeout)
	}

	// DHCP clients open their packet sockets here, in the caller's thread
	// and namespace; the exchanges then run concurrently.
	type job struct {
		link   netlink.Link
		client *nclient4.Client
		lease  *nclient4.Lease
		err    error
	}
	var jobs []*job
	for _, l := range up {
		c, err := nclient4.New(l.Attrs().Name, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
		if err != nil {
			res.Failed[l.Attrs().Name] = fmt.Errorf("dhcp client: %w", err)
			continue
		}
		jobs = append(jobs, &job{link: l, client: c})
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DHCPTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.lease, j.err = j.client.Request(dctx, dhcpv4.WithRequestedOptions(
				dhcpv4.OptionInterfaceMTU, dhcpv4.OptionClasslessStaticRoute,
				dhcpv4.OptionDNSDomainSearchList, dhcpv4.OptionBroadcastAddress))
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		j.client.Close()
		name := j.link.Attrs().Name
		if j.err != nil {
			res.Failed[name] = fmt.Errorf("dhcp: %w", j.err)
			logf("netup: %s: DHCP failed: %v", name, j.err)
			continue
		}
		l, err := FromACK(name, j.lease.ACK)
		if err != nil {
			res.Failed[name] = err
			continue
		}
		if err := apply(h, j.link, l); err != nil {
			res.Failed[name] = err
			logf("netup: %s: %v", name, err)
			continue
		}
		logf("netup: %s: %s via %v from %v for %s", name, l.Address.String(), l.Router, l.Server, l.Duration)
		res.Leases = append(res.Leases, l)
	}
	if len(res.Leases) == 0 {
		if configured > 0 {
			return res, nil
		}
		var errs []error
		for name, err := range res.Failed {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		return res, fmt.Errorf("netup: no lease: %w", errors.Join(errs...))
	}
	if cfg.ResolvConf != "" {
		if err := WriteResolvConf(cfg.ResolvConf, res.Leases); err != nil {
			return res, err
		}
	}
	return res, nil
}

const reasonConfigured = "already has an IPv4 address"

// skipReason says why a link is not ours to configure ("" = it is).
func skipReason(h *netlink.Handle, l netlink.Link) string {
	a := l.Attrs()
	if a.Flags&net.FlagLoopback != 0 || l.Type() == "loopback" {
		return "loopback"
	}
	if len(a.HardwareAddr) != 6 {
		return "no Ethernet address"
	}
	switch l.Type() {
	case "bridge", "bond", "vlan", "macvlan", "ipvlan", "vxlan", "wireguard", "tun", "tuntap":
		// Virtual devices someone else created are someone else's.
		return "virtual device (" + l.Type() + ")"
	}
	if a.MasterIndex != 0 {
		return "enslaved to another device"
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return "cannot read its addresses: " + err.Error()
	}
	for _, ad := range addrs {
		if ad.Scope == int(netlink.SCOPE_UNIVERSE) {
			return reasonConfigured
		}
	}
	return ""
}

// waitCarrier sets the links up and waits for carrier (IFF_LOWER_UP),
// bounded by timeout and, once one link has carrier, by carrierGrace.
// Links it set up that never got carrier are set down again.
func waitCarrier(ctx context.Context, h *netlink.Handle, links []netlink.Link, timeout time.Duration, logf func(string, ...any), res *Result) []netlink.Link {
	wasDown := map[int]bool{}
	for _, l := range links {
		if l.Attrs().Flags&net.FlagUp == 0 {
			wasDown[l.Attrs().Index] = true
			if err := h.LinkSetUp(l); err != nil {
				res.Failed[l.Attrs().Name] = fmt.Errorf("setting link up: %w", err)
			}
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var grace <-chan time.Time
	withCarrier := map[int]netlink.Link{}
	for {
		for _, l := range links {
			idx := l.Attrs().Index
			if _, ok := withCarrier[idx]; ok {
				continue
			}
			cur, err := h.LinkByIndex(idx)
			if err == nil && cur.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 {
				withCarrier[idx] = cur
				if grace == nil {
					grace = time.After(carrierGrace)
				}
			}
		}
		if len(withCarrier) == len(links) {
			break
		}
		select {
		case <-ctx.Done():
		case <-deadline.C:
		case <-grace:
		case <-tick.C:
			continue
		}
		break
	}
	var up []netlink.Link
	for _, l := range links {
		if c, ok := withCarrier[l.Attrs().Index]; ok {
			up = append(up, c)
			continue
		}
		if _, failed := res.Failed[l.Attrs().Name]; !failed {
			res.Skipped[l.Attrs().Name] = "no carrier"
		}
		logf("netup: %s: no carrier", l.Attrs().Name)
		if wasDown[l.Attrs().Index] {
			_ = h.LinkSetDown(l) // leave it as we found it
		}
	}
	return up
}

// FromACK extracts the configuration from a DHCP ACK.
func FromACK(iface string, ack *dhcpv4.DHCPv4) (Lease, error) {
	if ack == nil {
		return Lease{}, fmt.Errorf("dhcp: no ACK")
	}
	ip := ack.YourIPAddr.To4()
	if ip == nil || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() {
		return Lease{}, fmt.Errorf("dhcp: unusable address %v offered", ack.YourIPAddr)
	}
	mask := ack.SubnetMask()
	if ones, bits := mask.Size(); bits != 32 || ones == 0 {
		mask = ip.DefaultMask()
		if mask == nil {
			mask = net.CIDRMask(32, 32)
		}
	}
	l := Lease{
		Interface: iface,
		Address:   net.IPNet{IP: ip, Mask: mask},
		DNS:       ack.DNS(),
		Server:    ack.ServerIdentifier(),
		Duration:  ack.IPAddressLeaseTime(0),
		Routes:    ack.ClasslessStaticRoute(),
	}
	if r := ack.Router(); len(r) > 0 && r[0].To4() != nil && !r[0].IsUnspecified() {
		l.Router = r[0].To4()
	}
	if ds := ack.DomainSearch(); ds != nil {
		l.Search = append(l.Search, ds.Labels...)
	}
	if len(l.Search) == 0 && ack.DomainName() != "" {
		l.Search = []string{ack.DomainName()}
	}
	if mtu, err := dhcpv4.GetUint16(dhcpv4.OptionInterfaceMTU, ack.Options); err == nil && mtu >= 576 {
		l.MTU = int(mtu)
	}
	return l, nil
}

// apply configures the lease on the link: MTU, address (with the lease's
// lifetime, as dracut does, so a lease nobody renews expires), routes.
func apply(h *netlink.Handle, link netlink.Link, l Lease) error {
	if l.MTU > 0 && l.MTU != link.Attrs().MTU {
		if err := h.LinkSetMTU(link, l.MTU); err != nil {
			return fmt.Errorf("setting MTU %d: %w", l.MTU, err)
		}
	}
	addr := &netlink.Addr{IPNet: &l.Address}
	if ones, _ := l.Address.Mask.Size(); ones < 31 {
		bc := make(net.IP, 4)
		for i := range bc {
			bc[i] = l.Address.IP[i] | ^l.Address.Mask[i]
		}
		addr.Broadcast = bc
	}
	if l.Duration > 0 && l.Duration < 0xffffffff*time.Second {
		secs := int(l.Duration / time.Second)
		addr.ValidLft, addr.PreferedLft = secs, secs
	}
	if err := h.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("adding address %s: %w", l.Address.String(), err)
	}
	idx := link.Attrs().Index
	// RFC 3442: when classless routes are given, the router option is ignored.
	if len(l.Routes) > 0 {
		for _, r := range l.Routes {
			if err := addRoute(h, idx, l.Address, r.Dest, r.Router); err != nil {
				return err
			}
		}
		return nil
	}
	if l.Router != nil && !hasDefaultRoute(h) {
		return addRoute(h, idx, l.Address, nil, l.Router)
	}
	return nil
}

func addRoute(h *netlink.Handle, idx int, local net.IPNet, dst *net.IPNet, gw net.IP) error {
	if dst != nil && dst.IP.IsUnspecified() {
		if ones, _ := dst.Mask.Size(); ones == 0 {
			dst = nil
		}
	}
	if gw == nil || gw.IsUnspecified() {
		// A directly connected network.
		if dst == nil {
			return nil
		}
		return ignoreExists(h.RouteReplace(&netlink.Route{LinkIndex: idx, Dst: dst, Scope: netlink.SCOPE_LINK}), dst, gw)
	}
	var flags int
	if !local.Contains(gw) {
		// Cloud DHCP servers hand out /32s with a gateway outside them
		// (GCE); the gateway is then reachable on the link.
		flags = int(netlink.FLAG_ONLINK)
	}
	r := &netlink.Route{LinkIndex: idx, Dst: dst, Gw: gw, Flags: flags}
	if dst == nil && hasDefaultRoute(h) {
		return nil
	}
	return ignoreExists(h.RouteReplace(r), dst, gw)
}

func ignoreExists(err error, dst *net.IPNet, gw net.IP) error {
	if err == nil || errors.Is(err, unix.EEXIST) {
		return nil
	}
	what := "default"
	if dst != nil {
		what = dst.String()
	}
	return fmt.Errorf("adding route %s via %v: %w", what, gw, err)
}

func hasDefaultRoute(h *netlink.Handle) bool {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Dst == nil || (r.Dst.IP.IsUnspecified() && maskZero(r.Dst.Mask)) {
			if r.Table == 0 || r.Table == unix.RT_TABLE_MAIN {
				return true
			}
		}
	}
	return false
}

func maskZero(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

// ResolvConf renders resolv.conf for the leases: at most three nameservers
// (the resolver's limit), the search domains of all leases, no duplicates.
func ResolvConf(leases []Lease) string {
	var b strings.Builder
	b.WriteString("# written by provision (initrd DHCP)\n")
	var ns []string
	var search []string
	for _, l := range leases {
		for _, d := range l.DNS {
			if s := d.String(); d.To4() != nil && !slices.Contains(ns, s) && len(ns) < 3 {
				ns = append(ns, s)
			}
		}
		for _, s := range l.Search {
			if s = strings.TrimSuffix(s, "."); validDomain(s) && !slices.Contains(search, s) && len(search) < 6 {
				search = append(search, s)
			}
		}
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	for _, n := range ns {
		fmt.Fprintf(&b, "nameserver %s\n", n)
	}
	return b.String()
}

// validDomain keeps what a DHCP server sends from injecting lines or
// options into resolv.conf.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// WriteResolvConf writes ResolvConf(leases) to path atomically (a reader
// never sees half a file). Nothing is written when no lease has DNS.
func WriteResolvConf(path string, leases []Lease) error {
	has := false
	for _, l := range leases {
		has = has || len(l.DNS) > 0
	}
	if !has {
		return nil
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("netup: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".resolv.conf.*")
	if err != nil {
		return fmt.Errorf("netup: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(ResolvConf(leases)); err != nil {
		tmp.Close()
		return fmt.Errorf("netup: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("netup: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("netup: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("netup: writing %s: %w", path, err)
	}
	return nil
}
