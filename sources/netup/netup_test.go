package netup

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
)

func ack(t *testing.T, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	base := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithYourIP(net.IPv4(10, 231, 0, 57)),
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestFromACK(t *testing.T) {
	a := ack(t,
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithRouter(net.IPv4(10, 231, 0, 1)),
		dhcpv4.WithDNS(net.IPv4(10, 231, 0, 53), net.IPv4(1, 1, 1, 1)),
		dhcpv4.WithLeaseTime(3600),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.test", "b.test"}})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x05, 0xb4})),
	)
	l, err := FromACK("eth0", a)
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "10.231.0.57/24" || !l.Router.Equal(net.IPv4(10, 231, 0, 1)) || len(l.DNS) != 2 ||
		l.Duration != time.Hour || l.MTU != 1460 || len(l.Search) != 2 {
		t.Fatalf("lease %+v", l)
	}
}

func TestFromACKDefaultsAndRejects(t *testing.T) {
	l, err := FromACK("eth0", ack(t, dhcpv4.WithOption(dhcpv4.OptDomainName("example.test"))))
	if err != nil {
		t.Fatal(err)
	}
	if l.Address.String() != "10.231.0.57/8" || l.Router != nil || l.Search[0] != "example.test" || l.MTU != 0 {
		t.Errorf("lease %+v", l)
	}
	for _, ip := range []net.IP{net.IPv4zero, net.IPv4(127, 0, 0, 1), net.IPv4(224, 0, 0, 1)} {
		if _, err := FromACK("eth0", ack(t, dhcpv4.WithYourIP(ip))); err == nil {
			t.Errorf("%v accepted", ip)
		}
	}
	if _, err := FromACK("eth0", nil); err == nil {
		t.Error("nil ACK accepted")
	}
}

func TestResolvConf(t *testing.T) {
	leases := []Lease{
		{DNS: []net.IP{net.IPv4(10, 0, 0, 53), net.IPv4(10, 0, 0, 54)}, Search: []string{"corp.test.", "evil\nnameserver 6.6.6.6"}},
		{DNS: []net.IP{net.IPv4(10, 0, 0, 53), net.IPv4(9, 9, 9, 9), net.IPv4(8, 8, 8, 8)}, Search: []string{"corp.test"}},
	}
	want := "# written by provision (initrd DHCP)\nsearch corp.test\nnameserver 10.0.0.53\nnameserver 10.0.0.54\nnameserver 9.9.9.9\n"
	if got := ResolvConf(leases); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	p := filepath.Join(t.TempDir(), "etc", "resolv.conf")
	if err := WriteResolvConf(p, leases); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != want {
		t.Errorf("file %q", b)
	}
	q := filepath.Join(t.TempDir(), "resolv.conf")
	if err := WriteResolvConf(q, []Lease{{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(q); !os.IsNotExist(err) {
		t.Error("resolv.conf written without nameservers")
	}
}
