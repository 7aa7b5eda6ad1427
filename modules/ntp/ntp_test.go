package ntp

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

const unitFile = "[Service]\nExecStart=/usr/sbin/x\n[Install]\nWantedBy=multi-user.target\n"

// openSUSE: chrony.conf includes /etc/chrony.d/*.conf, so the servers go
// into a drop-in there and chrony.conf is left as it is; chronyd.service
// is enabled with the symlink systemctl makes.
func TestChronyDropInOpenSUSE(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/os-release":                         "NAME=\"openSUSE MicroOS\"\nID=\"opensuse-microos\"\n",
		"etc/chrony.conf":                        "# distro\ninclude /etc/chrony.d/*.conf\ndriftfile /var/lib/chrony/drift\n",
		"usr/sbin/chronyd":                       "",
		"usr/lib/systemd/system/chronyd.service": unitFile,
	})
	cfg := &config.Config{NTP: &config.NTP{Client: "auto", Servers: []string{"ntp.example.org"}}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Target != "/etc/chrony.d/cloud-init.conf" || steps[1].Action != "enable" || steps[1].Target != "chronyd.service" {
		t.Fatalf("steps %v", steps)
	}
	rootfstest.Apply(t, root, steps)
	b, _ := root.ReadFile("/etc/chrony.d/cloud-init.conf")
	if !strings.HasSuffix(string(b), "\nserver ntp.example.org iburst\n") || strings.Contains(string(b), "pool") {
		t.Errorf("drop-in %q", b)
	}
	if b, _ := root.ReadFile("/etc/chrony.conf"); !strings.Contains(string(b), "driftfile") {
		t.Errorf("chrony.conf changed: %q", b)
	}
	if _, err := root.Lstat("/etc/systemd/system/multi-user.target.wants/chronyd.service"); err != nil {
		t.Errorf("chronyd not enabled: %v", err)
	}
}

// Without an include, chrony.conf itself is edited: its server and pool
// lines replaced, the rest kept; no servers means cloud-init's default
// pools for the distribution.
func TestChronyConfDebianDefaults(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/os-release":                               "ID=debian\n",
		"etc/chrony/chrony.conf":                       "pool 2.debian.pool.ntp.org iburst\nmakestep 1 3\n",
		"usr/sbin/chronyd":                             "",
		"lib/systemd/system/chrony.service":            unitFile,
		"usr/lib/systemd/systemd-timesyncd":            "",
		"lib/systemd/system/systemd-timesyncd.service": unitFile,
	})
	steps, err := Plan(&config.Config{NTP: &config.NTP{Client: "auto"}}, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Target != "/etc/chrony/chrony.conf" || steps[1].Target != "chrony.service" {
		t.Fatalf("steps %v", steps)
	}
	rootfstest.Apply(t, root, steps)
	b, _ := root.ReadFile("/etc/chrony/chrony.conf")
	want := "makestep 1 3\n# written by provision from cloud-config ntp\npool 0.debian.pool.ntp.org iburst\npool 1.debian.pool.ntp.org iburst\npool 2.debian.pool.ntp.org iburst\npool 3.debian.pool.ntp.org iburst\n"
	if string(b) != want {
		t.Errorf("chrony.conf\n%s\nwant\n%s", b, want)
	}
}

func TestTimesyncd(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"usr/lib/systemd/systemd-timesyncd":                "",
		"usr/lib/systemd/system/systemd-timesyncd.service": unitFile,
		"usr/sbin/chronyd":                                 "",
	})
	cfg := &config.Config{NTP: &config.NTP{Client: "systemd-timesyncd", Servers: []string{"a.example"}, Pools: []string{"pool.example"}, Peers: []string{"p"}}}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 2 || steps[0].Target != "/etc/systemd/timesyncd.conf.d/cloud-init.conf" || !strings.Contains(steps[0].Detail, "peers and allow left out") {
		t.Fatalf("steps %v, %v", steps, err)
	}
	rootfstest.Apply(t, root, steps)
	b, _ := root.ReadFile("/etc/systemd/timesyncd.conf.d/cloud-init.conf")
	if !strings.HasSuffix(string(b), "[Time]\nNTP=a.example pool.example\n") {
		t.Errorf("drop-in %q", b)
	}
	if !root.Exists("/etc/systemd/system/multi-user.target.wants/systemd-timesyncd.service") {
		t.Error("systemd-timesyncd not enabled")
	}
}

// A target without any client: the run goes on. With packages to
// install, the distribution's client joins them (chrony on openSUSE,
// systemd-timesyncd on Debian) and is configured once installed; without,
// the plan warns with the package to add and writes nothing.
func TestNoClient(t *testing.T) {
	suse := map[string]string{"etc/os-release": "ID=\"opensuse-microos\"\nID_LIKE=\"suse opensuse\"\n", "usr/lib/systemd/system/": ""}
	root := rootfstest.NewRoot(t, suse)
	cfg := &config.Config{NTP: &config.NTP{Client: "auto"}}
	if p := ClientPackages(cfg, root); p != nil {
		t.Errorf("packages added to a run that installs none: %v", p)
	}
	steps, err := Plan(cfg, root)
	if err != nil || len(steps) != 1 || steps[0].Target != "chrony" || !strings.Contains(steps[0].Detail, "add chrony to packages:") {
		t.Fatalf("auto without a client: %v %v", steps, err)
	}
	if out := rootfstest.Apply(t, root, steps); !strings.Contains(out, "[WARN] ntp:") {
		t.Errorf("console %q", out)
	}
	if root.Exists("/etc/chrony.d") || root.Exists("/etc/chrony.conf") {
		t.Error("wrote a configuration for a client that is not there")
	}

	deb := rootfstest.NewRoot(t, map[string]string{"etc/os-release": "ID=debian\n", "lib/systemd/system/": ""})
	cfg.Packages = []config.Package{{Name: "htop"}}
	if p := ClientPackages(cfg, deb); len(p) != 1 || p[0].Name != "systemd-timesyncd" {
		t.Errorf("Debian: %v", p)
	}
	if p := ClientPackages(cfg, root); len(p) != 1 || p[0].Name != "chrony" {
		t.Errorf("openSUSE: %v", p)
	}
	// Already listed: not twice.
	cfg.Packages = append(cfg.Packages, config.Package{Name: "chrony"})
	if p := ClientPackages(cfg, root); len(p) != 0 {
		t.Errorf("chrony listed twice: %v", p)
	}
	steps, err = Plan(cfg, root)
	if err != nil || len(steps) != 1 || !strings.HasPrefix(steps[0].Action, "configure chrony once installed") {
		t.Fatalf("deferred: %v %v", steps, err)
	}
	// The package step "installed" chrony: the step finds it and its
	// drop-in directory when it runs.
	for p, c := range map[string]string{
		"usr/sbin/chronyd":                       "",
		"etc/chrony.conf":                        "include /etc/chrony.d/*.conf\n",
		"usr/lib/systemd/system/chronyd.service": unitFile,
	} {
		if err := root.WriteFile("/"+p, []byte(c), 0o644, rootfs.RootOwner); err != nil {
			t.Fatal(err)
		}
	}
	rootfstest.Apply(t, root, steps)
	if b, _ := root.ReadFile("/etc/chrony.d/cloud-init.conf"); !strings.Contains(string(b), "pool 0.opensuse.pool.ntp.org iburst\n") {
		t.Errorf("drop-in %q", b)
	}
	if !root.Exists("/etc/systemd/system/multi-user.target.wants/chronyd.service") {
		t.Error("chronyd not enabled")
	}
	// Installed but still missing (a package without the binary): a
	// warning, not a failed run.
	cfg.Packages = []config.Package{{Name: "htop"}}
	steps, _ = Plan(cfg, deb)
	if out := rootfstest.Apply(t, deb, steps); !strings.Contains(out, "systemd-timesyncd not found after installing systemd-timesyncd") {
		t.Errorf("console %q", out)
	}

	root = rootfstest.NewRoot(t, map[string]string{"usr/sbin/chronyd": "", "usr/lib/systemd/system/": ""})
	if steps, err := Plan(&config.Config{NTP: &config.NTP{Client: "ntp"}}, root); err != nil || len(steps) != 1 || !strings.Contains(steps[0].Detail, "add ntp to packages:") {
		t.Errorf("ntp_client ntp without ntpd: %v %v", steps, err)
	}
	if _, err := Plan(&config.Config{NTP: &config.NTP{Client: "chrony"}}, root); err == nil || !strings.Contains(err.Error(), "no chronyd.service or chrony.service unit") {
		t.Errorf("chrony without its unit: %v", err)
	}
	if steps, err := Plan(&config.Config{}, root); err != nil || len(steps) != 0 {
		t.Errorf("no ntp: %v %v", steps, err)
	}
}

// ntp.config: confpath, service_name and check_exe override the client's;
// peers and allow become chrony lines; a second run gives the same file.
func TestConfigOverrides(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"opt/chrony/sbin/chronyd":              "",
		"etc/chrony.conf":                      "include /etc/chrony.d/*.conf\n",
		"etc/systemd/system/my-chrony.service": unitFile,
	})
	n := &config.NTP{Client: "chrony", Servers: []string{"s.example"}, Peers: []string{"peer.example"}, Allow: []string{"10.0.0.0/8"},
		ConfPath: "/etc/chrony-custom.conf", ServiceName: "my-chrony", CheckExe: "/opt/chrony/sbin/chronyd"}
	for run := 0; run < 2; run++ {
		steps, err := Plan(&config.Config{NTP: n}, root)
		// The second plan is empty: the file and the link are there.
		if run == 1 && (err != nil || len(steps) != 0) {
			t.Fatalf("second plan %v %v", steps, err)
		}
		if run == 0 && (err != nil || len(steps) != 2 || steps[0].Target != "/etc/chrony-custom.conf" || steps[1].Target != "my-chrony.service") {
			t.Fatalf("steps %v %v", steps, err)
		}
		rootfstest.Apply(t, root, steps)
	}
	b, _ := root.ReadFile("/etc/chrony-custom.conf")
	if want := marker + "\nserver s.example iburst\npeer peer.example\nallow 10.0.0.0/8\n"; string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}
