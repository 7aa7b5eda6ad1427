package network

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"go.yaml.in/yaml/v3"
)

func yamlDoc(t testing.TB, format, src string) config.NetworkDoc {
	t.Helper()
	var data any
	if err := yaml.Unmarshal([]byte(src), &data); err != nil {
		t.Fatal(err)
	}
	return config.NetworkDoc{Origin: config.Origin{Source: "nocloud:/dev/vdb", File: "network-config", Line: 1, Column: 1}, Format: format, Data: plainTree(data)}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, format, src, want string
	}{
		{"v2 unknown key", FormatV2, "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    wifi: x\n", "ethernets.eth0.wifi: unknown or unsupported key"},
		{"v2 wifis refused", FormatV2, "version: 2\nwifis: {}\n", "wifis: unknown or unsupported key"},
		{"v2 bad address", FormatV2, "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.300/24]\n", "ethernets.eth0.addresses[0]: invalid address"},
		{"v2 address without prefix", FormatV2, "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.3]\n", "has no prefix length"},
		{"v2 set-name without mac", FormatV2, "version: 2\nethernets:\n  e:\n    match: {name: eth0}\n    set-name: lan\n", "set-name: needs match.macaddress"},
		{"v2 member undefined", FormatV2, "version: 2\nbonds:\n  bond0:\n    interfaces: [eth9]\n", "bonds.bond0.interfaces[0]: eth9 is not defined"},
		{"v2 lacp in active-backup", FormatV2, "version: 2\nethernets: {eth1: {}}\nbonds:\n  bond0:\n    interfaces: [eth1]\n    parameters: {mode: active-backup, lacp-rate: fast}\n", "lacp-rate is only valid in mode 802.3ad"},
		{"v2 port with address", FormatV2, "version: 2\nethernets:\n  eth1: {addresses: [10.0.0.1/24]}\nbridges:\n  br0: {interfaces: [eth1]}\n", "eth1: is a member of br0 and cannot have IP configuration"},
		{"v2 vlan link missing", FormatV2, "version: 2\nvlans:\n  v10: {id: 10, link: eth0}\n", "v10: vlan link \"eth0\" is not defined"},
		{"v2 vlan id range", FormatV2, "version: 2\nethernets: {eth0: {}}\nvlans:\n  v10: {id: 5000, link: eth0}\n", "vlans.v10.id: 5000 out of range"},
		{"v2 route mixed family", FormatV2, "version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.2/24]\n    routes: [{to: 10.1.0.0/16, via: \"fe80::1\"}]\n", "mixes IPv4 and IPv6"},
		{"v2 gateway4 without v4", FormatV2, "version: 2\nethernets:\n  eth0:\n    dhcp6: true\n    gateway4: 10.0.0.1\n", "gateway4 10.0.0.1 without IPv4 addressing"},
		{"v2 bad mtu", FormatV2, "version: 2\nethernets:\n  eth0: {mtu: 20}\n", "ethernets.eth0.mtu: 20 out of range"},
		{"v2 name too long", FormatV2, "version: 2\nethernets:\n  averyveryverylongname0: {dhcp4: true}\n", "invalid interface name"},
		{"v2 bad search", FormatV2, "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    nameservers: {search: [\"a b\"]}\n", "invalid search domain"},
		{"v1 unknown type", FormatV1, "version: 1\nconfig:\n  - type: infiniband\n    name: ib0\n", "config[0].type: unsupported type \"infiniband\""},
		{"v1 unknown subnet type", FormatV1, "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets: [{type: ppp}]\n", "config[0].subnets[0].type: unsupported subnet type"},
		{"v1 address on dhcp", FormatV1, "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets: [{type: dhcp, address: 10.0.0.2/24}]\n", "an address needs subnet type static"},
		{"v1 bad netmask", FormatV1, "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets: [{type: static, address: 10.0.0.2, netmask: 255.0.255.0}]\n", "not contiguous"},
		{"v1 duplicate", FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: physical, name: eth0}\n", "eth0: defined twice"},
		{"v1 bond mode", FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: bond, name: bond0, bond_interfaces: [eth0], params: {bond-mode: fastest}}\n", "unknown bond mode \"fastest\""},
		{"v1 global route ambiguous", FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0, subnets: [{type: dhcp}]}\n  - {type: physical, name: eth1, subnets: [{type: dhcp}]}\n  - {type: route, destination: 10.0.0.0/8, gateway: 192.168.9.1}\n", "route to 10.0.0.0/8 (gateway 192.168.9.1): no interface has a static subnet containing the gateway, and 2 interfaces"},
		{"v2 forward delay 0 with STP on", FormatV2, "version: 2\nethernets:\n  eth0: {}\nbridges:\n  br0:\n    interfaces: [eth0]\n    parameters: {forward-delay: 0}\n", "forward delay 0 needs STP off"},
		{"v1 forward delay 0 with STP on", FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: bridge, name: br0, bridge_interfaces: [eth0], params: {bridge_stp: 'on', bridge_fd: 1}}\n", "forward delay 1 needs STP off"},
		{"v1 forward delay over 30", FormatV1, "version: 1\nconfig:\n  - {type: physical, name: eth0}\n  - {type: bridge, name: br0, bridge_interfaces: [eth0], params: {bridge_fd: 31}}\n", "out of range"},
		{"v1 version", FormatV1, "version: 3\nconfig: []\n", "version: 3 out of range"},
		{"unknown format", "ifupdown", "{}", "unknown network config format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(yamlDoc(t, tc.format, tc.src))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.HasPrefix(err.Error(), "nocloud:/dev/vdb:network-config:1:1: network: ") {
				t.Errorf("error %q does not start with the origin", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestMACAsNumber: YAML 1.1 (PyYAML, our cloud-config reader) reads an
// unquoted all-digit MAC as a base-60 integer.
func TestMACAsNumber(t *testing.T) {
	doc := config.NetworkDoc{Format: FormatV1, Data: map[string]any{"version": int64(1), "config": []any{
		map[string]any{"type": "physical", "name": "eth0", "mac_address": int64(2062194135296)},
	}}}
	_, err := Parse(doc)
	if err == nil || !strings.Contains(err.Error(), "config[0].mac_address: MAC address was read as a number") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenStackErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"bad mac", `{"links":[{"id":"a","type":"phy","ethernet_mac_address":"zz"}]}`, "links[0].ethernet_mac_address: invalid MAC"},
		{"network link", `{"links":[],"networks":[{"id":"n","type":"ipv4_dhcp","link":"x"}]}`, "networks[0].link: link x is not defined"},
		{"network type", `{"links":[{"id":"a","ethernet_mac_address":"fa:16:3e:00:00:01"}],"networks":[{"id":"n","type":"ipv5","link":"a"}]}`, "unsupported network type \"ipv5\""},
		{"family", `{"links":[{"id":"a","ethernet_mac_address":"fa:16:3e:00:00:01"}],"networks":[{"id":"n","type":"ipv6","link":"a","ip_address":"10.0.0.1","netmask":"255.0.0.0"}]}`, "IPv4 address in a network of type ipv6"},
		{"link type", `{"links":[{"id":"a","type":"vxlan"}]}`, "links[0].type: unsupported link type"},
		{"no way to find", `{"links":[{"id":"this-id-is-too-long-for-a-name","type":"phy"}]}`, "neither a MAC address nor a usable name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data any
			if err := json.Unmarshal([]byte(tc.src), &data); err != nil {
				t.Fatal(err)
			}
			_, err := Parse(config.NetworkDoc{Origin: config.Origin{Source: "configdrive:/dev/sr0", File: "network_data.json"}, Format: FormatOpenStack, Data: data})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "configdrive:/dev/sr0:network_data.json: ") {
				t.Fatalf("err = %v, want origin and %q", err, tc.want)
			}
		})
	}
}

func TestParseSemantics(t *testing.T) {
	m, err := Parse(yamlDoc(t, FormatV2, `
version: 2
ethernets:
  eth0:
    dhcp4: true
    routes:
      - {to: default, via: "2001:db8::1"}
      - {to: 0.0.0.0/0, via: 10.0.0.1, metric: 300}
    accept-ra: true
`))
	if err != nil {
		t.Fatal(err)
	}
	i := m.Interfaces[0]
	if len(i.Routes) != 2 || i.Routes[0].To.String() != "::/0" || *i.Routes[1].Metric != 300 {
		t.Errorf("routes = %+v", i.Routes)
	}

	// v1: a second static subnet's gateway becomes a default route, not a
	// second gateway; dhcp6 after slaac wins.
	m, err = Parse(yamlDoc(t, FormatV1, `
version: 1
config:
  - type: physical
    name: eth0
    subnets:
      - {type: static, address: 10.0.0.2/24, gateway: 10.0.0.1}
      - {type: static, address: 10.0.1.2/24, gateway: 10.0.1.1}
      - {type: ipv6_slaac}
      - {type: ipv6_dhcpv6-stateless}
`))
	if err != nil {
		t.Fatal(err)
	}
	i = m.Interfaces[0]
	if i.Gateway4.String() != "10.0.0.1" || len(i.Routes) != 1 || i.Routes[0].Via.String() != "10.0.1.1" || i.IPv6 != IPv6DHCP {
		t.Errorf("interface = %+v", i)
	}

	// OpenStack ipv6_slaac keeps no static address.
	var data any
	_ = json.Unmarshal([]byte(`{"links":[{"id":"t","ethernet_mac_address":"fa:16:3e:00:00:01"}],
		"networks":[{"id":"n","type":"ipv6_slaac","link":"t","ip_address":"2001:db8::5","netmask":"ffff:ffff:ffff:ffff::"}]}`), &data)
	m, err = Parse(config.NetworkDoc{Format: FormatOpenStack, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if i := m.Interfaces[0]; len(i.Addresses) != 0 || i.IPv6 != IPv6SLAAC {
		t.Errorf("slaac interface = %+v", i)
	}
}

func TestUUID5(t *testing.T) {
	a, b := uuid5("cloud-init eth0"), uuid5("cloud-init eth1")
	if a == b || len(a) != 36 || a[14] != '5' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("uuid5 = %s, %s", a, b)
	}
	if a != uuid5("cloud-init eth0") {
		t.Error("uuid5 not deterministic")
	}
}
