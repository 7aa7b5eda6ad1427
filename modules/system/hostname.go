package system

import (
	"errors"
	"fmt"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// names is cloud-init's util.get_hostname_fqdn for a config: an explicit
// fqdn wins and gives the short name unless hostname is set too; a hostname
// with a dot is taken as the fqdn; a plain hostname is both (cloud-init's
// datasource returns the bare name as fqdn when it knows no domain).
func names(s *config.System) (hostname, fqdn string, origin config.Origin, ok bool) {
	switch {
	case s.FQDN.IsSet():
		fqdn, origin = s.FQDN.Value, s.FQDN.Origin
		hostname = strings.SplitN(fqdn, ".", 2)[0]
		if s.Hostname.IsSet() {
			hostname, origin = s.Hostname.Value, s.Hostname.Origin
		}
	case s.Hostname.IsSet() && strings.Index(s.Hostname.Value, ".") > 0:
		fqdn, origin = s.Hostname.Value, s.Hostname.Origin
		hostname = fqdn[:strings.Index(fqdn, ".")]
	case s.Hostname.IsSet():
		hostname, fqdn, origin = s.Hostname.Value, s.Hostname.Value, s.Hostname.Origin
	default:
		return "", "", config.Origin{}, false
	}
	return hostname, fqdn, origin, true
}

func checkNames(s *config.System) error {
	var errs []error
	if s.Hostname.IsSet() && !config.ValidHostname(s.Hostname.Value) {
		errs = append(errs, fmt.Errorf("%s: invalid hostname %q", s.Hostname.Origin, s.Hostname.Value))
	}
	if s.FQDN.IsSet() && !config.ValidHostname(s.FQDN.Value) {
		errs = append(errs, fmt.Errorf("%s: invalid fqdn %q", s.FQDN.Origin, s.FQDN.Value))
	}
	return errors.Join(errs...)
}

func planHostname(s *config.System, root *rootfs.Root) ([]modules.Step, error) {
	if err := checkNames(s); err != nil {
		return nil, err
	}
	if s.PreserveHostname != nil && s.PreserveHostname.Value {
		return nil, nil
	}
	hostname, fqdn, origin, ok := names(s)
	if !ok {
		return nil, nil
	}
	// cloud-init's Distro._select_hostname: the short name unless
	// prefer_fqdn_over_hostname (false on Debian and SUSE).
	name := hostname
	if s.PreferFQDN != nil && s.PreferFQDN.Value && fqdn != "" {
		name = fqdn
	}
	// hostnamectl (SUSE) and Debian's writer both leave exactly the name.
	data := []byte(name + "\n")
	// create_hostname_file: false leaves a target without /etc/hostname
	// without one (systemd then takes the name from elsewhere).
	noCreate := s.CreateHostnameFile != nil && !s.CreateHostnameFile.Value
	return edit{
		action:       "set hostname",
		path:         "/etc/hostname",
		origin:       origin,
		detail:       name,
		onlyIfExists: noCreate,
		render:       func([]byte, *rootfs.Root) ([]byte, error) { return data, nil },
	}.plan(root)
}

// hostsMode parses manage_etc_hosts: cloud-init accepts a boolean (and its
// string spellings), "template" (the deprecated spelling of true) and
// "localhost".
func hostsMode(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "false", "no", "off", "0", "n", "f":
		return "", nil
	case "true", "yes", "on", "1", "y", "t", "template":
		return "template", nil
	case "localhost":
		return "localhost", nil
	}
	return "", fmt.Errorf("manage_etc_hosts: unknown value %q (true, false or localhost)", v)
}

func planHosts(s *config.System, root *rootfs.Root) ([]modules.Step, error) {
	mode, err := hostsMode(s.ManageEtcHosts.Value)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.ManageEtcHosts.Origin, err)
	}
	if mode == "" {
		return nil, nil
	}
	if err := checkNames(s); err != nil {
		return nil, err
	}
	hostname, fqdn, _, ok := names(s)
	if !ok && root != nil {
		// cloud-init falls back to the system's hostname.
		if b, err := root.ReadFile("/etc/hostname"); err == nil {
			if n := strings.TrimSpace(string(b)); config.ValidHostname(n) {
				s2 := config.System{Hostname: config.Setting{Value: n}}
				hostname, fqdn, _, ok = names(&s2)
			}
		}
	}
	if !ok {
		// cloud-init only logs a warning here: nothing to write.
		return nil, nil
	}
	e := edit{
		action: "write hosts",
		path:   "/etc/hosts",
		origin: s.ManageEtcHosts.Origin,
	}
	if mode == "localhost" {
		e.action = "update hosts"
		e.detail = "127.0.1.1 " + hostEntry(fqdn, hostname)
		e.render = func(old []byte, _ *rootfs.Root) ([]byte, error) {
			return updateLocalhost(old, hostname, fqdn), nil
		}
	} else {
		e.detail = "template for the target's distribution, " + hostEntry(fqdn, hostname)
		e.render = func(_ []byte, r *rootfs.Root) ([]byte, error) {
			return renderHosts(osFamily(r), hostname, fqdn), nil
		}
	}
	return e.plan(root)
}

// hostEntry is "fqdn hostname", or one name when they are the same
// (cloud-init would write it twice).
func hostEntry(fqdn, hostname string) string {
	if fqdn == hostname || fqdn == "" {
		return hostname
	}
	return fqdn + " " + hostname
}

// osFamily maps the target's os-release to the hosts layout cloud-init uses
// for it (its templates/hosts.<family>.tmpl).
func osFamily(root *rootfs.Root) string {
	if root == nil {
		return "debian"
	}
	var data []byte
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if b, err := root.ReadFile(p); err == nil {
			data = b
			break
		}
	}
	ids := strings.Fields(envValue(data, "ID") + " " + envValue(data, "ID_LIKE"))
	for _, id := range ids {
		switch {
		case strings.Contains(id, "suse") || id == "sles":
			return "suse"
		case id == "debian" || id == "ubuntu":
			return "debian"
		case id == "rhel" || id == "fedora" || id == "centos":
			return "redhat"
		}
	}
	return "debian"
}

const hostsHeader = "# Written by provision because the configuration sets manage_etc_hosts.\n" +
	"# Change the configuration, not this file, to keep a change.\n"

// renderHosts produces the entries of cloud-init's hosts template for the
// family, with our own header.
func renderHosts(family, hostname, fqdn string) []byte {
	self := hostEntry(fqdn, hostname)
	var b strings.Builder
	b.WriteString(hostsHeader)
	switch family {
	case "suse":
		fmt.Fprintf(&b, "127.0.1.1 %s\n", self)
		b.WriteString("127.0.0.1 localhost.localdomain localhost\n" +
			"127.0.0.1 localhost4.localdomain4 localhost4\n\n")
		fmt.Fprintf(&b, "::1 %s\n", self)
		b.WriteString("::1 localhost.localdomain localhost\n" +
			"::1 localhost6.localdomain6 localhost6\n" +
			"::1 localhost ipv6-localhost ipv6-loopback\n\n" +
			"fe00::0 ipv6-localnet\n" +
			"ff00::0 ipv6-mcastprefix\n" +
			"ff02::1 ipv6-allnodes\n" +
			"ff02::2 ipv6-allrouters\n" +
			"ff02::3 ipv6-allhosts\n")
	case "redhat":
		fmt.Fprintf(&b, "127.0.0.1 %s\n", self)
		b.WriteString("127.0.0.1 localhost.localdomain localhost\n" +
			"127.0.0.1 localhost4.localdomain4 localhost4\n\n")
		fmt.Fprintf(&b, "::1 %s\n", self)
		b.WriteString("::1 localhost.localdomain localhost\n" +
			"::1 localhost6.localdomain6 localhost6\n")
	default: // debian
		fmt.Fprintf(&b, "127.0.1.1 %s\n", self)
		b.WriteString("127.0.0.1 localhost\n\n" +
			"::1 localhost ip6-localhost ip6-loopback\n" +
			"ff02::1 ip6-allnodes\n" +
			"ff02::2 ip6-allrouters\n")
	}
	return []byte(b.String())
}

// updateLocalhost is manage_etc_hosts: localhost. cloud-init keeps the old
// 127.0.1.1 entries and appends a new one after them, so a stale name is
// still what 127.0.1.1 resolves back to; we replace the first 127.0.1.1
// line in place and drop the others. Every other line is kept as it is.
func updateLocalhost(old []byte, hostname, fqdn string) []byte {
	want := "127.0.1.1 " + hostEntry(fqdn, hostname)
	var out []string
	replaced := false
	for _, line := range lines(old) {
		fields := strings.Fields(strings.SplitN(line, "#", 2)[0])
		if len(fields) == 0 || fields[0] != "127.0.1.1" {
			out = append(out, line)
			continue
		}
		if replaced {
			continue
		}
		replaced = true
		if len(fields) >= 2 && fields[1] == fqdn && containsName(fields[2:], hostname, fqdn) {
			out = append(out, line) // already right: keep its spacing
			continue
		}
		out = append(out, want)
	}
	if !replaced {
		if len(old) == 0 {
			// A hosts file without localhost breaks far more than it fixes.
			out = append(out, "127.0.0.1 localhost", "::1 localhost")
		}
		out = append(out, want)
	}
	return joinLines(out)
}

func containsName(aliases []string, hostname, fqdn string) bool {
	if hostname == fqdn {
		return true
	}
	for _, a := range aliases {
		if a == hostname {
			return true
		}
	}
	return false
}
