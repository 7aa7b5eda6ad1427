package cloudinitdiff

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pair is one case applied by both: a is cloud-init's tree, b
// provision's, base the pristine one.
type pair struct {
	a, b, base string
	aOut, bOut string
}

// apply makes the two copies, runs setup on each (the image as the case
// wants it), and applies sd with cloud-init's modules in a and with
// provision in b.
func (s *suite) apply(t *testing.T, sd seed, setup func(t *testing.T, tree string), modules ...string) pair {
	t.Helper()
	p := pair{a: s.copyOf(t, "cloud-init"), b: s.copyOf(t, "provision"), base: s.base}
	if setup != nil {
		setup(t, p.a)
		setup(t, p.b)
		base := s.copyOf(t, "image")
		setup(t, base)
		p.base = base
	}
	p.aOut = runCloudInit(t, p.a, sd, modules...)
	p.bOut = s.runProvision(t, p.b, sd)
	t.Logf("cloud-init:\n%s\nprovision:\n%s", p.aOut, p.bOut)
	return p
}

// unitPaths are where enabled units show: the symlinks systemctl makes.
var unitPaths = []string{"/etc/systemd/system"}

// sourceLines are the server and pool lines of a chrony or ntp
// configuration, in order.
func sourceLines(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && (f[0] == "server" || f[0] == "pool" || f[0] == "peer" || f[0] == "allow") {
			out = append(out, strings.Join(f, " "))
		}
	}
	return out
}

// otherLines are the configuration lines that are neither comments nor
// time sources.
func otherLines(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || len(sourceLines(l)) > 0 {
			continue
		}
		out = append(out, l)
	}
	return out
}

const chronyConf = "/etc/chrony/chrony.conf"

// chronyDocumented asserts cloud-init and provision agree on chrony's
// sources, mode and owner, and differ as documented in modules/ntp's
// renderChrony: cloud-init renames the distribution's file to .dist and
// writes its template; provision keeps the distribution's other lines
// and replaces only the sources.
func chronyDocumented(t *testing.T, p pair) {
	t.Helper()
	a, b, img := stat(t, p.a, chronyConf), stat(t, p.b, chronyConf), stat(t, p.base, chronyConf)
	if got, want := sourceLines(b.data), sourceLines(a.data); !slices.Equal(got, want) {
		t.Errorf("time sources: provision %q, cloud-init %q", got, want)
	}
	if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
		t.Errorf("%s: provision %s, cloud-init %s", chronyConf, b, a)
	}
	// The documented difference: the rest of the file.
	if got, want := otherLines(b.data), otherLines(img.data); !slices.Equal(got, want) {
		t.Errorf("provision should keep the image's other lines %q, has %q", want, got)
	}
	if d := stat(t, p.a, chronyConf+".dist"); d.data != img.data {
		t.Errorf("cloud-init's %s.dist is not the image's file", chronyConf)
	}
	if exists(p.b, chronyConf+".dist") {
		t.Errorf("provision left a %s.dist: it edits the file in place", chronyConf)
	}
}

// fakeTimesyncd makes the image one whose client is systemd-timesyncd (as
// Debian installs it, enabled) instead of chrony: Debian's two packages
// conflict, so the tree has chrony and this case swaps it out.
func fakeTimesyncd(t *testing.T, tree string) {
	t.Helper()
	for _, p := range []string{"/usr/sbin/chronyd", "/etc/systemd/system/chronyd.service", "/etc/systemd/system/multi-user.target.wants/chrony.service"} {
		if err := os.Remove(filepath.Join(tree, p)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, tree, "/lib/systemd/systemd-timesyncd", "#!/bin/sh\n", 0o755)
	writeFile(t, tree, "/lib/systemd/system/systemd-timesyncd.service",
		"[Unit]\nDescription=Network Time Synchronization\n[Service]\nExecStart=/lib/systemd/systemd-timesyncd\n[Install]\nWantedBy=sysinit.target\nAlias=dbus-org.freedesktop.timesync1.service\n", 0o644)
	for link, target := range map[string]string{
		"/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service": "/lib/systemd/system/systemd-timesyncd.service",
		"/etc/systemd/system/dbus-org.freedesktop.timesync1.service":         "/lib/systemd/system/systemd-timesyncd.service",
	} {
		host := filepath.Join(tree, link)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, host); err != nil {
			t.Fatal(err)
		}
	}
}

const timesyncdDropIn = "/etc/systemd/timesyncd.conf.d/cloud-init.conf"

// timesyncdSettings are a timesyncd file's key=value lines, values with
// their blanks collapsed (cloud-init's template leaves one after the last
// name).
func timesyncdSettings(conf string) []string {
	var out []string
	for _, l := range strings.Split(conf, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if k, v, ok := strings.Cut(l, "="); ok {
			l = k + "=" + strings.Join(strings.Fields(v), " ")
		}
		out = append(out, l)
	}
	return out
}

func TestNTP(t *testing.T) {
	s := need(t)
	cases := []struct {
		name  string
		ud    string
		setup func(*testing.T, string)
		check func(*testing.T, pair)
	}{
		{
			name: "servers and pools",
			ud:   "ntp:\n  servers: [ntp1.example.org, ntp2.example.org]\n  pools: [pool.example.org]\n",
			check: func(t *testing.T, p pair) {
				chronyDocumented(t, p)
				if got := sourceLines(readFile(t, p.b, chronyConf)); !slices.Equal(got, []string{"pool pool.example.org iburst", "server ntp1.example.org iburst", "server ntp2.example.org iburst"}) {
					t.Errorf("sources %q", got)
				}
				same(t, p.a, p.b, unitPaths...)
			},
		},
		{
			name: "no servers: the distribution's pools",
			ud:   "ntp: {}\n",
			check: func(t *testing.T, p pair) {
				chronyDocumented(t, p)
				if got := sourceLines(readFile(t, p.b, chronyConf)); len(got) != 4 || got[0] != "pool 0.debian.pool.ntp.org iburst" {
					t.Errorf("sources %q", got)
				}
				same(t, p.a, p.b, unitPaths...)
			},
		},
		{
			name: "null",
			ud:   "ntp:\n",
			check: func(t *testing.T, p pair) {
				chronyDocumented(t, p)
				same(t, p.a, p.b, unitPaths...)
			},
		},
		{
			// peers and allow are later cloud-init's (23.1); 22.4.2's
			// chrony template has neither, provision writes both (README).
			name: "peers and allow",
			ud:   "ntp:\n  servers: [ntp1.example.org]\n  peers: [peer.example.org]\n  allow: [192.0.2.0/24]\n",
			check: func(t *testing.T, p pair) {
				a, b := readFile(t, p.a, chronyConf), readFile(t, p.b, chronyConf)
				if got := sourceLines(a); !slices.Equal(got, []string{"server ntp1.example.org iburst"}) {
					t.Errorf("cloud-init 22.4.2's sources %q", got)
				}
				if got := sourceLines(b); !slices.Equal(got, []string{"server ntp1.example.org iburst", "peer peer.example.org", "allow 192.0.2.0/24"}) {
					t.Errorf("provision's sources %q", got)
				}
				same(t, p.a, p.b, unitPaths...)
			},
		},
		{
			// config.confpath: cloud-init renders its whole template
			// there; provision writes the sources (and its marker) into
			// the new file. The image's chrony.conf is left by both.
			name: "confpath",
			ud:   "ntp:\n  ntp_client: chrony\n  servers: [ntp1.example.org]\n  config:\n    confpath: /etc/chrony/conf.d/cidiff.conf\n",
			check: func(t *testing.T, p pair) {
				const conf = "/etc/chrony/conf.d/cidiff.conf"
				a, b := stat(t, p.a, conf), stat(t, p.b, conf)
				if ga, gb := sourceLines(a.data), sourceLines(b.data); !slices.Equal(ga, gb) || len(gb) != 1 {
					t.Errorf("sources: cloud-init %q, provision %q", ga, gb)
				}
				if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
					t.Errorf("%s: cloud-init %s, provision %s", conf, a, b)
				}
				unchanged(t, "cloud-init", p.base, p.a, chronyConf)
				unchanged(t, "provision", p.base, p.b, chronyConf)
				same(t, p.a, p.b, unitPaths...)
			},
		},
		{
			name: "enabled false",
			ud:   "ntp:\n  enabled: false\n  servers: [ntp1.example.org]\n",
			check: func(t *testing.T, p pair) {
				for who, tree := range map[string]string{"cloud-init": p.a, "provision": p.b} {
					unchanged(t, who, p.base, tree, "/etc/chrony", "/etc/systemd/system")
				}
			},
		},
		{
			// cloud-init 22.4.2 enables no unit on Linux (it only
			// reload-or-restarts it); provision enables the client's
			// service (README: "and its service enabled"), which shows
			// only on an image where the package left it disabled.
			name: "chrony disabled in the image",
			ud:   "ntp:\n  servers: [ntp1.example.org]\n",
			setup: func(t *testing.T, tree string) {
				for _, p := range []string{"/etc/systemd/system/chronyd.service", "/etc/systemd/system/multi-user.target.wants/chrony.service"} {
					if err := os.Remove(filepath.Join(tree, p)); err != nil {
						t.Fatal(err)
					}
				}
			},
			check: func(t *testing.T, p pair) {
				chronyDocumented(t, p)
				unchanged(t, "cloud-init", p.base, p.a, unitPaths...)
				if l := stat(t, p.b, "/etc/systemd/system/multi-user.target.wants/chrony.service"); l.kind != "link" {
					t.Errorf("provision did not enable chrony.service: %s", l)
				}
			},
		},
		{
			name:  "systemd-timesyncd",
			ud:    "ntp:\n  servers: [ntp1.example.org]\n  pools: [pool.example.org]\n",
			setup: fakeTimesyncd,
			check: func(t *testing.T, p pair) {
				a, b := stat(t, p.a, timesyncdDropIn), stat(t, p.b, timesyncdDropIn)
				if got, want := timesyncdSettings(b.data), timesyncdSettings(a.data); !slices.Equal(got, want) {
					t.Errorf("%s: provision %q, cloud-init %q", timesyncdDropIn, got, want)
				}
				if a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
					t.Errorf("%s: provision %s, cloud-init %s", timesyncdDropIn, b, a)
				}
				same(t, p.a, p.b, unitPaths...)
				unchanged(t, "provision", p.base, p.b, "/etc/chrony")
			},
		},
		{
			// README: a target without the client is configured only when
			// the run installs packages; otherwise provision writes nothing
			// and warns naming the package. cloud-init writes the drop-in
			// and asks apt-get to install timesyncd's (empty) package list.
			name: "systemd-timesyncd named, not installed",
			ud:   "ntp:\n  ntp_client: systemd-timesyncd\n  servers: [ntp1.example.org]\n",
			check: func(t *testing.T, p pair) {
				if got := timesyncdSettings(stat(t, p.a, timesyncdDropIn).data); !slices.Equal(got, []string{"[Time]", "NTP=ntp1.example.org"}) {
					t.Errorf("cloud-init's drop-in %q", got)
				}
				if exists(p.b, timesyncdDropIn) {
					t.Errorf("provision wrote %s for a client the target lacks", timesyncdDropIn)
				}
				if !strings.Contains(p.bOut, "systemd-timesyncd") || !strings.Contains(p.bOut, "WARN") {
					t.Errorf("provision did not warn naming systemd-timesyncd:\n%s", p.bOut)
				}
				unchanged(t, "provision", p.base, p.b, "/etc/chrony", "/etc/systemd/system")
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := s.apply(t, seed{userData: c.ud}, c.setup, "cc_ntp")
			c.check(t, p)
		})
	}
}
