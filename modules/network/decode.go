package network

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// The documents arrive as decoded trees: map[string]any, []any, string,
// int64 (YAML) or float64 (JSON), bool, nil. These helpers read them with a
// path for the error message ("ethernets.eth0.addresses[1]").

type pathError struct {
	path string
	msg  string
}

func (e *pathError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return e.path + ": " + e.msg
}

func errAt(path, format string, args ...any) error {
	return &pathError{path: path, msg: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64, int:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func asMap(v any, path string) (map[string]any, error) {
	switch t := v.(type) {
	case map[string]any:
		return t, nil
	case nil:
		return map[string]any{}, nil
	}
	return nil, errAt(path, "expected a mapping, got %s", describe(v))
}

func asList(v any, path string) ([]any, error) {
	switch t := v.(type) {
	case []any:
		return t, nil
	case nil:
		return nil, nil
	}
	return nil, errAt(path, "expected a list, got %s", describe(v))
}

// asStringList accepts a list of strings or a single string (cloud-init v1
// allows both for nameserver addresses and search domains; a string may hold
// several space-separated words).
func asStringList(v any, path string, split bool) ([]string, error) {
	if s, ok := v.(string); ok {
		if split {
			return strings.Fields(s), nil
		}
		return []string{s}, nil
	}
	l, err := asList(v, path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(l))
	for n, it := range l {
		s, err := asString(it, index(path, n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func asString(v any, path string) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case float64:
		if t == math.Trunc(t) && math.Abs(t) < 1e15 {
			return strconv.FormatInt(int64(t), 10), nil
		}
	}
	return "", errAt(path, "expected a string, got %s", describe(v))
}

func asInt(v any, path string, lo, hi int64) (int, error) {
	var n int64
	switch t := v.(type) {
	case int64:
		n = t
	case int:
		n = int64(t)
	case float64:
		if t != math.Trunc(t) || math.IsInf(t, 0) || math.Abs(t) > 1<<53 {
			return 0, errAt(path, "expected an integer, got %v", t)
		}
		n = int64(t)
	case string:
		p, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
		if err != nil {
			return 0, errAt(path, "expected an integer, got %q", t)
		}
		n = p
	default:
		return 0, errAt(path, "expected an integer, got %s", describe(v))
	}
	if n < lo || n > hi {
		return 0, errAt(path, "%d out of range (%d-%d)", n, lo, hi)
	}
	return int(n), nil
}

func intPtr(v any, path string, lo, hi int64) (*int, error) {
	n, err := asInt(v, path, lo, hi)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// asBool accepts YAML booleans and the strings cloud-init's v1 params use
// ("on", "off", "yes", "no", "true", "false", "1", "0").
func asBool(v any, path string) (bool, error) {
	switch t := v.(type) {
	case bool:
		return t, nil
	case int64:
		if t == 0 || t == 1 {
			return t == 1, nil
		}
	case float64:
		if t == 0 || t == 1 {
			return t == 1, nil
		}
	case string:
		switch strings.ToLower(strings.TrimSpace(t)) {
		case "on", "yes", "true", "1", "y":
			return true, nil
		case "off", "no", "false", "0", "n":
			return false, nil
		}
	}
	return false, errAt(path, "expected a boolean, got %v", v)
}

func boolPtr(v any, path string) (*bool, error) {
	b, err := asBool(v, path)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// asMAC reads a MAC address in NetworkManager's canonical spelling
// (upper-case, colon-separated). An unquoted all-digit MAC is a YAML 1.1
// sexagesimal number; its text is lost, so say so instead of guessing.
func asMAC(v any, path string) (string, error) {
	switch v.(type) {
	case int64, float64:
		return "", errAt(path, "MAC address was read as a number (YAML 1.1 reads 11:22:33:44:55:66 as base 60); quote it")
	}
	s, err := asString(v, path)
	if err != nil {
		return "", err
	}
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return "", errAt(path, "invalid MAC address %q", s)
	}
	return strings.ToUpper(hw.String()), nil
}

func asAddr(v any, path string) (netip.Addr, error) {
	s, err := asString(v, path)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errAt(path, "invalid IP address %q", s)
	}
	return a.Unmap(), nil
}

// parsePrefix reads "addr/len", or "addr" with a separate netmask (dotted
// IPv4 mask, IPv6 mask or a length); a bare address without one is a host
// address (/32, /128) only when allowBare.
func parsePrefix(s, mask, path string, allowBare bool) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, errAt(path, "invalid address %q", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errAt(path, "invalid address %q", s)
	}
	a = a.Unmap()
	if mask == "" {
		if !allowBare {
			return netip.Prefix{}, errAt(path, "address %q has no prefix length or netmask", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	bits, err := maskBits(mask, a.Is4())
	if err != nil {
		return netip.Prefix{}, errAt(path, "%v", err)
	}
	return netip.PrefixFrom(a, bits), nil
}

func maskBits(mask string, v4 bool) (int, error) {
	mask = strings.TrimSpace(mask)
	max := 128
	if v4 {
		max = 32
	}
	if n, err := strconv.Atoi(mask); err == nil {
		if n < 0 || n > max {
			return 0, fmt.Errorf("prefix length %d out of range", n)
		}
		return n, nil
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || m.Is4() != v4 {
		return 0, fmt.Errorf("invalid netmask %q", mask)
	}
	ones, bits := net.IPMask(m.AsSlice()).Size()
	if bits == 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", mask)
	}
	return ones, nil
}

// checkKeys refuses keys outside known, naming the first (sorted) so the
// message is stable.
func checkKeys(m map[string]any, path string, known ...string) error {
	var bad []string
	for k := range m {
		if !containsStr(known, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	return errAt(join(path, bad[0]), "unknown or unsupported key")
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
