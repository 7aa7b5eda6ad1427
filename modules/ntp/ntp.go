// Package ntp applies cloud-init's ntp: the client the target has (or the
// one named) gets its servers and pools where that client reads them, and
// its service is enabled through the units module, as `systemctl enable`
// would. Without servers or pools, cloud-init's defaults are used: the
// four {0..3}.<distribution>.pool.ntp.org pools.
//
// A target without the client is not an error (cloud-init would install
// one): when the configuration installs packages anyway, the client's
// package joins that install (ClientPackages) and the client is configured
// after it; otherwise the plan says which package to add and nothing is
// written.
package ntp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/units"
	"github.com/provision-dev/provision/provision/config"
)

const module = "ntp"

// client is what provision knows of an NTP client in the target.
type client struct {
	name     string
	exes     []string // any of these present means the client is installed
	services []string // unit names, the first the target has is enabled
}

// clients in cloud-init's order of preference for auto.
var clients = []client{
	{"chrony", []string{"/usr/sbin/chronyd", "/sbin/chronyd", "/usr/bin/chronyd"}, []string{"chronyd.service", "chrony.service"}},
	{"systemd-timesyncd", []string{"/usr/lib/systemd/systemd-timesyncd", "/lib/systemd/systemd-timesyncd"}, []string{"systemd-timesyncd.service"}},
	{"ntp", []string{"/usr/sbin/ntpd", "/sbin/ntpd"}, []string{"ntpd.service", "ntp.service", "ntpsec.service"}},
	{"ntpdate", []string{"/usr/sbin/ntpdate", "/sbin/ntpdate"}, []string{"ntpdate.service"}},
}

// unitDirs is where the target's unit files are looked for.
var unitDirs = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// exeDirs stand for PATH when check_exe is a bare name (cloud-init's
// subp.which).
var exeDirs = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// choice is the client the plan configures and whether the target has it.
type choice struct {
	client
	installed bool
	packages  []string // what installs it on this distribution
}

// decide picks the client: the one named, or for auto the first the target
// has, or when it has none the distribution's own: systemd-timesyncd on
// Debian-like targets (what Debian installs by default), chrony elsewhere
// (openSUSE, Fedora and their relatives).
func decide(n *config.NTP, root *rootfs.Root) choice {
	debian := debianLike(root)
	for _, c := range clients {
		if n.Client != "auto" && c.name != n.Client {
			continue
		}
		ch := choice{client: c, installed: hasExe(root, c, n.CheckExe), packages: packagesFor(c.name, debian, n.Packages)}
		if n.Client != "auto" || ch.installed {
			return ch.withOverrides(n)
		}
	}
	c := clients[0] // chrony
	if debian {
		c = clients[1] // systemd-timesyncd
	}
	return choice{client: c, packages: packagesFor(c.name, debian, n.Packages)}.withOverrides(n)
}

func (ch choice) withOverrides(n *config.NTP) choice {
	if n.ServiceName != "" {
		s := n.ServiceName
		if !strings.Contains(s, ".") {
			s += ".service" // cloud-init's service_name is systemctl's argument
		}
		ch.services = []string{s}
	}
	return ch
}

// packagesFor is cloud-init's packages of a client, with Debian's names
// where they differ (timesyncd is its own package there since bookworm).
// systemd-timesyncd elsewhere comes with systemd: nothing to install.
func packagesFor(name string, debian bool, override []string) []string {
	if override != nil {
		return override
	}
	switch name {
	case "chrony":
		return []string{"chrony"}
	case "systemd-timesyncd":
		if debian {
			return []string{"systemd-timesyncd"}
		}
		return nil
	case "ntp":
		if debian {
			return []string{"ntpsec"}
		}
		return []string{"ntp"}
	default:
		return []string{name}
	}
}

func hasExe(root *rootfs.Root, c client, checkExe string) bool {
	exes := c.exes
	switch {
	case strings.HasPrefix(checkExe, "/"):
		exes = []string{checkExe}
	case checkExe != "":
		exes = nil
		for _, d := range exeDirs {
			exes = append(exes, path.Join(d, checkExe))
		}
	}
	for _, e := range exes {
		if st, err := root.Stat(e); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// ClientPackages returns the packages to add to the configuration's
// install for ntp: the client's, when the target lacks it and the
// configuration installs packages anyway (a run that installs nothing
// does not start doing so for ntp: the plan asks for the package instead).
func ClientPackages(cfg *config.Config, root *rootfs.Root) []config.Package {
	n := cfg.NTP
	if n == nil || root == nil || len(cfg.Packages) == 0 {
		return nil
	}
	ch := decide(n, root)
	if ch.installed {
		return nil
	}
	var out []config.Package
	for _, p := range ch.packages {
		if !slices.ContainsFunc(cfg.Packages, func(q config.Package) bool { return q.Name == p }) {
			out = append(out, config.Package{Origin: n.Origin, Name: p})
		}
	}
	return out
}

// Plan returns the configuration write and the service enable for cfg.NTP.
// The client is chosen from the target, so a dry run without one says
// only what would be chosen.
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	n := cfg.NTP
	if n == nil {
		return nil, nil
	}
	if root == nil {
		return []modules.Step{{
			Module: module, Action: "configure", Target: n.Client, Origin: n.Origin,
			Detail: "client, file and service chosen from the target (--root)",
		}}, nil
	}
	ch := decide(n, root)
	if ch.installed {
		return planInstalled(n, ch, root)
	}
	pkgs := strings.Join(ch.packages, " ")
	if len(cfg.Packages) > 0 && len(ch.packages) > 0 {
		// The package step installs the client first; what it brings
		// (chrony.conf with or without an include, the unit's name) is
		// read when this step runs.
		return []modules.Step{{
			Module: module, Action: "configure " + ch.name + " once installed", Target: pkgs, Origin: n.Origin,
			Detail: "added to the package step: the target has no NTP client; servers " + serverList(n, root),
			Apply: func(ctx context.Context, env *modules.Env) error {
				ch := decide(n, env.Root)
				if !ch.installed {
					// The package manager said it installed it; a client
					// still missing leaves time unsynchronised, not the
					// system unbootable.
					warnf(env.Console, "[WARN] ntp: %s not found after installing %s: not configured [%s]\n", ch.name, pkgs, n.Origin)
					return nil
				}
				steps, err := planInstalled(n, ch, env.Root)
				if err != nil {
					return err
				}
				for _, s := range steps {
					if err := s.Apply(ctx, env); err != nil {
						return fmt.Errorf("%s: %w", s.Target, err)
					}
				}
				return nil
			},
		}}, nil
	}
	detail := "the target has no NTP client; add " + pkgs + " to packages: to have it installed and configured in this run"
	if len(ch.packages) == 0 {
		detail = "the target has no " + ch.name + "; name its package in ntp.config.packages and add it to packages:"
	}
	return []modules.Step{{
		Module: module, Action: "not configured: warning", Target: ch.name, Origin: n.Origin, Detail: detail,
		Apply: func(_ context.Context, env *modules.Env) error {
			warnf(env.Console, "[WARN] ntp: %s [%s]\n", detail, n.Origin)
			return nil
		},
	}}, nil
}

func warnf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format, args...)
	}
}

// serverList is what the plan line says will be configured.
func serverList(n *config.NTP, root *rootfs.Root) string {
	servers, pools := n.Servers, n.Pools
	if len(servers) == 0 && len(pools) == 0 {
		pools = defaultPools(root)
	}
	return strings.Join(append(append([]string(nil), servers...), pools...), " ")
}

// planInstalled plans the write and the enable for a client the target has.
func planInstalled(n *config.NTP, ch choice, root *rootfs.Root) ([]modules.Step, error) {
	servers, pools := n.Servers, n.Pools
	if len(servers) == 0 && len(pools) == 0 {
		pools = defaultPools(root)
	}
	p, render := configFile(ch.client, root, n.ConfPath)
	old, err := root.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: ntp: %w", n.Origin, err)
	}
	data := render(old, lines{servers: servers, pools: pools, peers: n.Peers, allow: n.Allow})
	detail := strings.Join(append(append([]string(nil), servers...), pools...), " ")
	if ch.name == "systemd-timesyncd" && len(n.Peers)+len(n.Allow) > 0 {
		detail += "; peers and allow left out: systemd-timesyncd has neither" // cloud-init's template drops them too
	}
	var steps []modules.Step
	if !bytes.Equal(old, data) { // a plan lists only what changes something
		steps = append(steps, modules.Step{
			Module: module, Action: "write " + ch.name + " configuration", Target: p, Origin: n.Origin,
			Detail: detail,
			Apply: func(_ context.Context, env *modules.Env) error {
				return env.Root.WriteFile(p, data, 0o644, rootfs.RootOwner)
			},
		})
	}
	svc := ""
	for _, s := range ch.services {
		if hasUnit(root, s) {
			svc = s
			break
		}
	}
	if svc == "" {
		return nil, fmt.Errorf("%s: ntp: the target has %s but no %s unit", n.Origin, ch.name, strings.Join(ch.services, " or "))
	}
	on := true
	en, err := units.Plan(&config.Config{Units: []config.Unit{{Origin: n.Origin, Name: svc, Enabled: &on}}}, root)
	if err != nil {
		return nil, err
	}
	return append(steps, en...), nil
}

func hasUnit(root *rootfs.Root, name string) bool {
	for _, d := range unitDirs {
		if root.Exists(path.Join(d, name)) {
			return true
		}
	}
	return false
}

// lines is what a configuration file gets.
type lines struct{ servers, pools, peers, allow []string }

type renderFunc func(old []byte, l lines) []byte

// configFile says where the client reads its servers in this target and
// how the file is made; confpath (ntp.config) overrides the place.
func configFile(c client, root *rootfs.Root, confpath string) (string, renderFunc) {
	switch c.name {
	case "systemd-timesyncd":
		if confpath != "" {
			return confpath, renderTimesyncd
		}
		return "/etc/systemd/timesyncd.conf.d/cloud-init.conf", renderTimesyncd
	case "chrony":
		if confpath != "" {
			return confpath, renderChrony
		}
		conf := "/etc/chrony.conf"
		if !root.Exists(conf) && root.Exists("/etc/chrony/chrony.conf") {
			conf = "/etc/chrony/chrony.conf" // Debian
		}
		if b, err := root.ReadFile(conf); err == nil {
			if dir := includeDir(b); dir != "" {
				// openSUSE: chrony.conf includes /etc/chrony.d/*.conf.
				return path.Join(dir, "cloud-init.conf"), func(_ []byte, l lines) []byte {
					return renderChrony(nil, l)
				}
			}
		}
		return conf, renderChrony
	default: // ntp, ntpdate: the same server/pool/peer syntax; ntpd has no allow
		if confpath == "" {
			confpath = "/etc/ntp.conf"
		}
		return confpath, func(old []byte, l lines) []byte {
			l.allow = nil
			return renderChrony(old, l)
		}
	}
}

// includeDir returns DIR of an "include DIR/*.conf" (chrony) or
// "confdir DIR" line of a chrony.conf.
func includeDir(conf []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(conf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "include" && strings.HasSuffix(f[1], "/*.conf") && path.IsAbs(f[1]) {
			return path.Dir(f[1])
		}
	}
	return ""
}

// renderChrony keeps every line of old but its server, pool and peer
// lines (cloud-init replaces the whole file from its template; keeping the
// distribution's other settings is what an admin editing it would do), and
// adds the lines of cloud-init's chrony template: pools and servers with
// iburst, peers, allow. ntpd reads the same syntax.
func renderChrony(old []byte, l lines) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(old))
	ours := false // below a previous run's marker: its allow lines are ours too
	for sc.Scan() {
		line := sc.Text()
		if line == marker {
			ours = true
			continue
		}
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "server" || f[0] == "pool" || f[0] == "peer" || (ours && f[0] == "allow")) {
			continue
		}
		b.WriteString(line + "\n")
	}
	b.WriteString(marker + "\n")
	for _, p := range l.pools {
		fmt.Fprintf(&b, "pool %s iburst\n", p)
	}
	for _, s := range l.servers {
		fmt.Fprintf(&b, "server %s iburst\n", s)
	}
	for _, p := range l.peers {
		fmt.Fprintf(&b, "peer %s\n", p)
	}
	for _, a := range l.allow {
		fmt.Fprintf(&b, "allow %s\n", a)
	}
	return b.Bytes()
}

const marker = "# written by provision from cloud-config ntp"

// renderTimesyncd is cloud-init's timesyncd drop-in: servers then pools,
// all in NTP=. timesyncd has no peers nor allow.
func renderTimesyncd(_ []byte, l lines) []byte {
	all := append(append([]string(nil), l.servers...), l.pools...)
	return []byte(marker + "\n[Time]\nNTP=" + strings.Join(all, " ") + "\n")
}

// defaultPools are cloud-init's: {0..3}.<distribution>.pool.ntp.org, SUSE
// distributions using opensuse's pool, unknown ones the global pool.
func defaultPools(root *rootfs.Root) []string {
	id, _ := osRelease(root)
	switch {
	case strings.HasPrefix(id, "opensuse") || strings.HasPrefix(id, "sle"):
		id = "opensuse"
	case id == "debian" || id == "ubuntu" || id == "fedora" || id == "centos" || id == "rhel" || id == "rocky" || id == "almalinux":
	default:
		id = ""
	}
	var out []string
	for i := 0; i < 4; i++ {
		if id == "" {
			out = append(out, fmt.Sprintf("%d.pool.ntp.org", i))
		} else {
			out = append(out, fmt.Sprintf("%d.%s.pool.ntp.org", i, id))
		}
	}
	return out
}

// debianLike: os-release's ID or ID_LIKE names debian (Ubuntu, Raspberry
// Pi OS...); without an os-release, a target whose package manager is
// apt's is taken for one, as its packages are Debian's.
func debianLike(root *rootfs.Root) bool {
	id, like := osRelease(root)
	if id == "debian" || slices.Contains(strings.Fields(like), "debian") {
		return true
	}
	return id == "" && (root.Exists("/var/lib/dpkg/status") || root.Exists("/usr/bin/apt-get"))
}

func osRelease(root *rootfs.Root) (id, idLike string) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := root.ReadFile(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ID="); ok {
				id = strings.Trim(v, `"'`)
			}
			if v, ok := strings.CutPrefix(sc.Text(), "ID_LIKE="); ok {
				idLike = strings.Trim(v, `"'`)
			}
		}
		return id, idLike
	}
	return "", ""
}
