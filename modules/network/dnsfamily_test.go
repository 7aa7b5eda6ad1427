package network

import (
	"strings"
	"testing"
)

// A nameserver of a family the interface does not configure is valid input:
// networkd takes it as it is; NetworkManager takes an IPv6 one with
// ipv6.method=auto and cannot keep an IPv4 one without IPv4 (it drops or
// refuses ipv4.dns otherwise), which its renderer says.
func TestNameserverOfUnconfiguredFamily(t *testing.T) {
	cases := []struct {
		name, src string
		networkd  string // a line of the interface's .network
		nm        string // a line of its profile, or the NM renderer's error
		nmErr     bool
	}{
		{"v2 v6 server on v4-only", "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    nameservers: {addresses: [\"2001:db8::53\"]}\n",
			"DNS=2001:db8::53", "[ipv6]\nmethod=auto\ndns=2001:db8::53;", false},
		{"v1 global v6 server, v4 only", "version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: static, address: 192.0.2.2/24}]}\n  - {type: nameserver, address: \"2001:db8::53\"}\n",
			"DNS=2001:db8::53", "[ipv6]\nmethod=auto\ndns=2001:db8::53;", false},
		{"v2 v4 server on v6-only", "version: 2\nethernets:\n  eth0:\n    dhcp6: true\n    nameservers: {addresses: [8.8.8.8]}\n",
			"DNS=8.8.8.8", "IPv4 nameserver only on an interface with IPv4 configured", true},
		{"v2 v6 server, accept-ra off", "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    accept-ra: false\n    nameservers: {addresses: [\"2001:db8::53\"]}\n",
			"DNS=2001:db8::53", "accept-ra: false leaves none", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			format := FormatV2
			if strings.HasPrefix(tc.src, "version: 1") {
				format = FormatV1
			}
			m, err := Parse(yamlDoc(t, format, tc.src))
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			files, err := RenderNetworkd(m)
			if err != nil {
				t.Fatalf("networkd: %v", err)
			}
			if !filesContain(files, tc.networkd) {
				t.Errorf("networkd files lack %q", tc.networkd)
			}
			files, err = RenderNM(m)
			switch {
			case tc.nmErr && (err == nil || !strings.Contains(err.Error(), tc.nm)):
				t.Errorf("NM: error %v, want %q", err, tc.nm)
			case !tc.nmErr && err != nil:
				t.Errorf("NM: %v", err)
			case !tc.nmErr && !filesContain(files, tc.nm):
				t.Errorf("NM profiles lack %q", tc.nm)
			}
		})
	}
}

func filesContain(files []File, s string) bool {
	for _, f := range files {
		if strings.Contains(string(f.Data), s) {
			return true
		}
	}
	return false
}

// bridge_fd 0 / forward-delay: 0 with STP off is what ifupdown users write
// for a bridge without STP; both renderers carry it.
func TestForwardDelayZeroWithoutSTP(t *testing.T) {
	for _, tc := range []struct{ format, src string }{
		{FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: bridge, name: br0, bridge_interfaces: [eth0], params: {bridge_stp: 'off', bridge_fd: 0}, subnets: [{type: dhcp}]}\n"},
		{FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: bridge, name: br0, bridge_interfaces: [eth0], params: {bridge_fd: 0}, subnets: [{type: dhcp}]}\n"},
		{FormatV2, "version: 2\nethernets:\n  eth0: {}\nbridges:\n  br0:\n    interfaces: [eth0]\n    dhcp4: true\n    parameters: {stp: false, forward-delay: 0}\n"},
	} {
		m, err := Parse(yamlDoc(t, tc.format, tc.src))
		if err != nil {
			t.Fatalf("refused: %v\n%s", err, tc.src)
		}
		nd, err := RenderNetworkd(m)
		if err != nil || !filesContain(nd, "ForwardDelaySec=0") || !filesContain(nd, "STP=no") {
			t.Errorf("networkd: %v\n%s", err, tc.src)
		}
		nm, err := RenderNM(m)
		if err != nil || !filesContain(nm, "forward-delay=0") || !filesContain(nm, "stp=false") {
			t.Errorf("NM: %v\n%s", err, tc.src)
		}
	}
}
