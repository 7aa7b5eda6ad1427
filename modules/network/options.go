package network

import "strings"

// Bond and bridge options, keyed by the kernel's sysfs names (which is also
// what NetworkManager's [bond] section uses). Each format maps its own
// spelling onto these.

var bondModes = map[string]string{
	"0": "balance-rr", "1": "active-backup", "2": "balance-xor", "3": "broadcast",
	"4": "802.3ad", "5": "balance-tlb", "6": "balance-alb",
	"balance-rr": "balance-rr", "active-backup": "active-backup", "balance-xor": "balance-xor",
	"broadcast": "broadcast", "802.3ad": "802.3ad", "balance-tlb": "balance-tlb", "balance-alb": "balance-alb",
}

var bondEnums = map[string]map[string]string{
	"lacp_rate":        {"0": "slow", "1": "fast", "slow": "slow", "fast": "fast"},
	"xmit_hash_policy": {"layer2": "layer2", "layer3+4": "layer3+4", "layer2+3": "layer2+3", "encap2+3": "encap2+3", "encap3+4": "encap3+4", "vlan+srcmac": "vlan+srcmac"},
	"ad_select":        {"0": "stable", "1": "bandwidth", "2": "count", "stable": "stable", "bandwidth": "bandwidth", "count": "count"},
	"primary_reselect": {"0": "always", "1": "better", "2": "failure", "always": "always", "better": "better", "failure": "failure"},
	"fail_over_mac":    {"0": "none", "1": "active", "2": "follow", "none": "none", "active": "active", "follow": "follow"},
	"arp_validate":     {"0": "none", "1": "active", "2": "backup", "3": "all", "4": "filter", "5": "filter_active", "6": "filter_backup", "none": "none", "active": "active", "backup": "backup", "all": "all", "filter": "filter", "filter_active": "filter_active", "filter_backup": "filter_backup"},
}

// setBondOption sets one option by kernel name; memberID maps a "primary"
// value (an interface name or document ID) to a member ID later.
func setBondOption(b *BondParams, key string, v any, path string) error {
	var err error
	enum := func(dst *string) error {
		s, err := asString(v, path)
		if err != nil {
			return err
		}
		val, ok := bondEnums[key][strings.ToLower(strings.TrimSpace(s))]
		if !ok {
			return errAt(path, "invalid value %q", s)
		}
		*dst = val
		return nil
	}
	ms := func(dst **int) error {
		*dst, err = intPtr(v, path, 0, 1<<31-1)
		return err
	}
	switch key {
	case "mode":
		s, err := asString(v, path)
		if err != nil {
			return err
		}
		m, ok := bondModes[strings.ToLower(strings.TrimSpace(s))]
		if !ok {
			return errAt(path, "unknown bond mode %q", s)
		}
		b.Mode = m
		return nil
	case "miimon":
		return ms(&b.MIIMon)
	case "updelay":
		return ms(&b.UpDelay)
	case "downdelay":
		return ms(&b.DownDelay)
	case "arp_interval":
		return ms(&b.ARPInterval)
	case "lp_interval":
		b.LearnPacketInter, err = intPtr(v, path, 1, 0x7fffffff)
		return err
	case "min_links":
		b.MinLinks, err = intPtr(v, path, 0, 0x7fffffff)
		return err
	case "num_grat_arp":
		b.GratuitousARP, err = intPtr(v, path, 0, 255)
		return err
	case "packets_per_slave":
		b.PacketsPerSlave, err = intPtr(v, path, 0, 65535)
		return err
	case "all_slaves_active":
		b.AllSlavesActive, err = boolPtr(v, path)
		return err
	case "lacp_rate":
		return enum(&b.LACPRate)
	case "xmit_hash_policy":
		return enum(&b.XmitHashPolicy)
	case "ad_select":
		return enum(&b.ADSelect)
	case "primary_reselect":
		return enum(&b.PrimaryReselect)
	case "fail_over_mac":
		return enum(&b.FailOverMAC)
	case "arp_validate":
		return enum(&b.ARPValidate)
	case "primary":
		b.Primary, err = asString(v, path)
		return err
	case "arp_ip_target":
		l, err := asStringList(v, path, true)
		if err != nil {
			return err
		}
		for n, s := range l {
			for _, f := range strings.Split(s, ",") {
				a, err := asAddr(f, index(path, n))
				if err != nil {
					return err
				}
				if !a.Is4() {
					return errAt(index(path, n), "ARP target %s is not IPv4", a)
				}
				b.ARPIPTargets = append(b.ARPIPTargets, a)
			}
		}
		return nil
	}
	return errAt(path, "unsupported bond option")
}

// checkBond refuses option combinations the kernel (and NetworkManager's
// verify step) reject, rather than letting a renderer drop them silently.
func checkBond(b *BondParams, id string) error {
	mode := b.Mode
	if mode == "" {
		mode = "balance-rr"
	}
	if b.LACPRate != "" && mode != "802.3ad" {
		return errAt(id, "lacp-rate is only valid in mode 802.3ad (mode is %s)", mode)
	}
	if b.ADSelect != "" && mode != "802.3ad" {
		return errAt(id, "ad-select is only valid in mode 802.3ad (mode is %s)", mode)
	}
	if b.Primary != "" && mode != "active-backup" && mode != "balance-tlb" && mode != "balance-alb" {
		return errAt(id, "primary is only valid in modes active-backup, balance-tlb and balance-alb (mode is %s)", mode)
	}
	if b.XmitHashPolicy != "" && mode != "balance-xor" && mode != "802.3ad" && mode != "balance-tlb" {
		return errAt(id, "transmit-hash-policy is only valid in modes balance-xor, 802.3ad and balance-tlb (mode is %s)", mode)
	}
	if b.MIIMon != nil && *b.MIIMon > 0 && b.ARPInterval != nil && *b.ARPInterval > 0 {
		return errAt(id, "mii-monitor-interval and arp-interval exclude each other")
	}
	if len(b.ARPIPTargets) > 16 {
		return errAt(id, "at most 16 ARP targets")
	}
	return nil
}

// setBridgeOption sets one bridge option (names as in the kernel's bridge
// sysfs, times in seconds).
func setBridgeOption(b *BridgeParams, key string, v any, path string) error {
	var err error
	switch key {
	case "stp":
		b.STP, err = boolPtr(v, path)
	case "forward_delay":
		// 0-30: NetworkManager's range; 2-30 only with STP on (checkBridge),
		// as the kernel and NetworkManager's verify step have it.
		b.ForwardDelay, err = intPtr(v, path, 0, 30)
	case "hello_time":
		b.HelloTime, err = intPtr(v, path, 1, 10)
	case "max_age":
		b.MaxAge, err = intPtr(v, path, 6, 40)
	case "ageing_time":
		b.AgeingTime, err = intPtr(v, path, 0, 1000000)
	case "priority":
		b.Priority, err = intPtr(v, path, 0, 65535)
	default:
		return errAt(path, "unsupported bridge option")
	}
	return err
}

// checkBridge refuses what the kernel rejects once STP is decided: with STP
// on the forward delay must be 2-30 s; with it off any delay from 0 is
// applied (the usual "bridge_fd 0" of a bridge without STP).
func checkBridge(b *BridgeParams, path string) error {
	if b.STP != nil && *b.STP && b.ForwardDelay != nil && *b.ForwardDelay < 2 {
		return errAt(path, "forward delay %d needs STP off (2-30 with STP on)", *b.ForwardDelay)
	}
	return nil
}
