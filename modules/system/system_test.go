package system

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

func origin(line int) config.Origin {
	return config.Origin{Source: "test", File: "user-data", Line: line, Column: 1}
}

func set(v string, line int) config.Setting { return config.Setting{Value: v, Origin: origin(line)} }

// A zone file only needs the TZif magic for our check.
const tzif = "TZif2\x00\x00\x00fake zone data"

// The kbd-model-map lines are in systemd's format; values chosen for the test.
const kbdModelMap = "# consolelayout\txlayout\txmodel\txvariant\txoptions\n" +
	"de\tde\tpc105\t-\tterminate:ctrl_alt_bksp\n" +
	"de-latin1\tde\tpc105\t-\tterminate:ctrl_alt_bksp\n" +
	"de-latin1-nodeadkeys\tde\tpc105\tnodeadkeys\tterminate:ctrl_alt_bksp\n" +
	"us\tus\tpc105+inet\t-\tterminate:ctrl_alt_bksp\n"

func distroRoot(t *testing.T, distro string) *rootfs.Root {
	common := map[string]string{
		"usr/share/zoneinfo/Europe/Berlin": tzif,
		"usr/share/zoneinfo/UTC":           tzif,
		"usr/share/systemd/kbd-model-map":  kbdModelMap,
		"etc/localtime":                    "->../usr/share/zoneinfo/UTC",
		"etc/hosts":                        "127.0.0.1\tlocalhost\n# custom entry\n192.0.2.7 build-server\n",
	}
	switch distro {
	case "suse":
		common["usr/lib/os-release"] = "NAME=\"openSUSE MicroOS\"\nID=\"opensuse-microos\"\nID_LIKE=\"suse opensuse opensuse-tumbleweed\"\n"
		common["etc/os-release"] = "->../usr/lib/os-release"
		common["etc/vconsole.conf"] = "FONT=eurlatgr\nKEYMAP=us\n"
		common["etc/locale.conf"] = "# set by the image\nLANG=C.UTF-8\nLC_TIME=en_DK.UTF-8\n"
	case "debian":
		common["etc/os-release"] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n"
		common["etc/timezone"] = "Etc/UTC\n"
		common["etc/default/locale"] = "LANG=C.UTF-8\n"
		common["etc/locale.conf"] = "->default/locale"
		common["etc/default/keyboard"] = "# KEYBOARD CONFIGURATION FILE\n\nXKBMODEL=\"pc105\"\nXKBLAYOUT=\"us\"\nXKBVARIANT=\"\"\nXKBOPTIONS=\"\"\n\nBACKSPACE=\"guess\"\n"
		common["etc/hostname"] = "debian\n"
		common["etc/hosts"] = "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n::1     localhost ip6-localhost ip6-loopback\n"
	}
	return rootfstest.NewRoot(t, common)
}

func fullConfig(manageHosts string) *config.Config {
	return &config.Config{System: config.System{
		Hostname:       set("node1", 2),
		FQDN:           set("node1.example.com", 3),
		ManageEtcHosts: set(manageHosts, 4),
		Timezone:       set("Europe/Berlin", 5),
		Locale:         set("de_DE.UTF-8", 6),
		Keyboard:       config.Keyboard{Origin: origin(7), Layout: "de", Variant: "nodeadkeys"},
	}}
}

func TestDistros(t *testing.T) {
	for _, tc := range []struct{ distro, hosts string }{
		{"suse", "true"}, {"debian", "localhost"}, {"debian", "template"},
	} {
		name := tc.distro + "-" + tc.hosts
		t.Run(name, func(t *testing.T) {
			root := distroRoot(t, tc.distro)
			cfg := fullConfig(tc.hosts)
			steps, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			rootfstest.Golden(t, name+"/plan.txt", rootfstest.PlanText(steps))
			rootfstest.Apply(t, root, steps)
			for _, f := range []string{"etc/hostname", "etc/hosts", "etc/locale.conf", "etc/vconsole.conf",
				"etc/X11/xorg.conf.d/00-keyboard.conf", "etc/default/keyboard", "etc/timezone", "etc/default/locale"} {
				st, err := os.Lstat(filepath.Join(root.Dir, f))
				if err != nil || !st.Mode().IsRegular() {
					continue // not part of this distribution, or a symlink (checked via its target)
				}
				data, _ := os.ReadFile(filepath.Join(root.Dir, f))
				rootfstest.Golden(t, name+"/"+strings.ReplaceAll(f, "/", "_"), data)
			}
			if link, err := os.Readlink(filepath.Join(root.Dir, "etc/localtime")); err != nil || link != "../usr/share/zoneinfo/Europe/Berlin" {
				t.Errorf("localtime -> %q, %v", link, err)
			}
			if tc.distro == "debian" {
				// locale.conf is a symlink: the edit went through it.
				if link, _ := os.Readlink(filepath.Join(root.Dir, "etc/locale.conf")); link != "default/locale" {
					t.Errorf("locale.conf symlink replaced: %q", link)
				}
			}
			shellCheck(t, root)
			again, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("plan after apply not empty:\n%s", rootfstest.PlanText(again))
			}
		})
	}
}

// shellCheck sources the environment files with a real shell (they are
// read that way by Debian's scripts and dracut) and checks the values.
func shellCheck(t *testing.T, root *rootfs.Root) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Log("no sh: skipping the shell check")
		return
	}
	script := `. ./etc/locale.conf && printf '%s|' "$LANG" && . ./etc/vconsole.conf && printf '%s|%s|%s' "$KEYMAP" "$XKBLAYOUT" "$XKBVARIANT"`
	cmd := exec.Command(sh, "-euc", script)
	cmd.Dir = root.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v: %s", err, out)
	}
	if got := string(out); got != "de_DE.UTF-8|de-latin1-nodeadkeys|de|nodeadkeys" {
		t.Errorf("sourced values: %q", got)
	}
}

func TestNames(t *testing.T) {
	tests := []struct {
		hostname, fqdn, wantHost, wantFQDN string
	}{
		{"node1", "", "node1", "node1"},
		{"node1.example.com", "", "node1", "node1.example.com"},
		{"", "node1.example.com", "node1", "node1.example.com"},
		{"other", "node1.example.com", "other", "node1.example.com"},
		{".weird", "", ".weird", ".weird"},
	}
	for _, tc := range tests {
		s := config.System{Hostname: set(tc.hostname, 1), FQDN: set(tc.fqdn, 2)}
		h, f, _, ok := names(&s)
		if !ok || h != tc.wantHost || f != tc.wantFQDN {
			t.Errorf("names(%q, %q) = %q, %q, %v", tc.hostname, tc.fqdn, h, f, ok)
		}
	}
	if _, _, _, ok := names(&config.System{}); ok {
		t.Error("names of nothing")
	}
}

func TestHostnameChoices(t *testing.T) {
	yes := &config.BoolSetting{Value: true, Origin: origin(9)}
	tests := []struct {
		name string
		sys  config.System
		want string // "" = no hostname step
	}{
		{"short", config.System{Hostname: set("node1", 1)}, "node1\n"},
		{"fqdn gives short", config.System{FQDN: set("a.b.c", 1)}, "a\n"},
		{"prefer fqdn", config.System{Hostname: set("a", 1), FQDN: set("a.b.c", 2), PreferFQDN: yes}, "a.b.c\n"},
		{"preserve", config.System{Hostname: set("a", 1), PreserveHostname: yes}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, map[string]string{"etc/hostname": "old\n"})
			steps, err := Plan(&config.Config{System: tc.sys}, root)
			if err != nil {
				t.Fatal(err)
			}
			rootfstest.Apply(t, root, steps)
			got, _ := os.ReadFile(filepath.Join(root.Dir, "etc/hostname"))
			want := tc.want
			if want == "" {
				want = "old\n"
				if len(steps) != 0 {
					t.Errorf("steps with preserve_hostname: %v", steps)
				}
			}
			if string(got) != want {
				t.Errorf("hostname %q, want %q", got, want)
			}
		})
	}
}

func TestPreserveHostnameStillManagesHosts(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/hostname": "old\n", "etc/hosts": "127.0.0.1 localhost\n"})
	cfg := &config.Config{System: config.System{
		Hostname: set("new", 1), PreserveHostname: &config.BoolSetting{Value: true}, ManageEtcHosts: set("localhost", 2),
	}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Target != "/etc/hosts" {
		t.Fatalf("steps: %v", steps)
	}
}

func TestHostsFallsBackToTargetHostname(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/hostname": "box.lan\n"})
	steps, err := Plan(&config.Config{System: config.System{ManageEtcHosts: set("localhost", 2)}}, root)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Apply(t, root, steps)
	got, _ := os.ReadFile(filepath.Join(root.Dir, "etc/hosts"))
	if string(got) != "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 box.lan box\n" {
		t.Errorf("hosts %q", got)
	}
}

func TestUpdateLocalhost(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1 localhost\n", "127.0.0.1 localhost\n127.0.1.1 h.example.com h\n"},
		{"127.0.1.1\told\n127.0.0.1 localhost\n127.0.1.1 older # c\n", "127.0.1.1 h.example.com h\n127.0.0.1 localhost\n"},
		{"127.0.1.1   h.example.com  alias h\n", "127.0.1.1   h.example.com  alias h\n"},
		{"# only a comment", "# only a comment\n127.0.1.1 h.example.com h\n"},
		{"", "127.0.0.1 localhost\n::1 localhost\n127.0.1.1 h.example.com h\n"},
	}
	for _, tc := range tests {
		if got := string(updateLocalhost([]byte(tc.in), "h", "h.example.com")); got != tc.want {
			t.Errorf("updateLocalhost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := string(updateLocalhost(nil, "h", "h")); !strings.HasSuffix(got, "127.0.1.1 h\n") {
		t.Errorf("same names: %q", got)
	}
}

func TestRenderHostsFamilies(t *testing.T) {
	for _, fam := range []string{"suse", "debian", "redhat"} {
		rootfstest.Golden(t, "hosts."+fam, renderHosts(fam, "node1", "node1.example.com"))
	}
}

func TestKeymapConversion(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		kb    config.Keyboard
		want  string
	}{
		{"legacy exact variant", map[string]string{"usr/share/systemd/kbd-model-map": kbdModelMap}, config.Keyboard{Layout: "de", Variant: "nodeadkeys"}, "de-latin1-nodeadkeys"},
		{"legacy first of ties", map[string]string{"usr/share/systemd/kbd-model-map": kbdModelMap}, config.Keyboard{Layout: "de"}, "de"},
		{"legacy model mismatch still layout", map[string]string{"usr/share/systemd/kbd-model-map": kbdModelMap}, config.Keyboard{Layout: "us"}, "us"},
		{"converted keymap wins", map[string]string{"usr/share/systemd/kbd-model-map": kbdModelMap, "usr/share/kbd/keymaps/xkb/de-nodeadkeys.map.gz": "x"}, config.Keyboard{Layout: "de", Variant: "nodeadkeys"}, "de-nodeadkeys"},
		{"unknown layout", map[string]string{"usr/share/systemd/kbd-model-map": kbdModelMap}, config.Keyboard{Layout: "fr"}, "fr"},
	}
	for _, tc := range tests {
		root := rootfstest.NewRoot(t, tc.files)
		if got, how := consoleKeymap(root, tc.kb, DefaultKeyboardModel); got != tc.want {
			t.Errorf("%s: %q (%s), want %q", tc.name, got, how, tc.want)
		}
	}
}

func TestHostile(t *testing.T) {
	outside := t.TempDir()
	escape := "->" + strings.Repeat("../", 12) + strings.TrimPrefix(outside, "/")
	base := map[string]string{"usr/share/zoneinfo/UTC": tzif, "usr/share/zoneinfo/zone.tab": "# not a zone\n", "usr/share/zoneinfo/Europe/": ""}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name  string
		files map[string]string
		sys   config.System
		want  string
	}{
		{"unknown timezone", base, config.System{Timezone: set("Mars/Olympus_Mons", 5)}, "unknown timezone"},
		// The host has this zone; the target does not.
		{"zone only on the host", base, config.System{Timezone: set("Europe/Berlin", 5)}, "does not exist in the target"},
		{"not a zone file", base, config.System{Timezone: set("zone.tab", 5)}, "not a TZif"},
		{"zone directory", base, config.System{Timezone: set("Europe", 5)}, "not a TZif"},
		{"timezone traversal", base, config.System{Timezone: set("../../../etc/passwd", 5)}, "invalid timezone"},
		{"zoneinfo symlink escapes", with(map[string]string{"usr/share/zoneinfo/Evil": escape}), config.System{Timezone: set("Evil/x", 5)}, "escapes"},
		{"etc escapes", with(map[string]string{"etc": escape}), config.System{Hostname: set("h", 5)}, "escapes"},
		{"hostname with newline", base, config.System{Hostname: set("h\nevil", 5)}, "invalid hostname"},
		{"bad fqdn", base, config.System{FQDN: set("a..b", 5)}, "invalid fqdn"},
		{"manage_etc_hosts value", base, config.System{Hostname: set("h", 1), ManageEtcHosts: set("sometimes", 5)}, "manage_etc_hosts"},
		{"locale injection", base, config.System{Locale: set("C.UTF-8\nLD_PRELOAD=/x", 5)}, "invalid locale"},
		{"keyboard injection", base, config.System{Keyboard: config.Keyboard{Origin: origin(5), Layout: "de$(reboot)"}}, "invalid keyboard"},
		{"hosts not a file", with(map[string]string{"etc/hosts/": ""}), config.System{Hostname: set("h", 1), ManageEtcHosts: set("localhost", 5)}, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, tc.files)
			steps, err := Plan(&config.Config{System: tc.sys}, root)
			if err == nil {
				t.Fatalf("no error; steps %v", steps)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test:user-data:5:1") {
				t.Errorf("error %q: want %q and the origin", err, tc.want)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("written outside: %v", entries)
			}
			if _, err := os.Lstat(filepath.Join(root.Dir, "etc/localtime")); err == nil {
				t.Error("localtime written")
			}
		})
	}
}

// Without a target at plan time the zone is checked when applying.
func TestTimezoneCheckedAtApply(t *testing.T) {
	steps, err := Plan(&config.Config{System: config.System{Timezone: set("Nowhere/City", 5)}}, nil)
	if err != nil || len(steps) != 2 {
		t.Fatalf("%v %v", steps, err)
	}
	root := rootfstest.NewRoot(t, map[string]string{"etc/": ""})
	err = steps[0].Apply(context.Background(), &modules.Env{Root: root})
	if err == nil || !strings.Contains(err.Error(), "test:user-data:5:1: unknown timezone") {
		t.Fatalf("apply: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root.Dir, "etc/localtime")); err == nil {
		t.Error("localtime written")
	}
	// /etc/timezone is left alone where the target has none.
	if err := steps[1].Apply(context.Background(), &modules.Env{Root: root}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root.Dir, "etc/timezone")); err == nil {
		t.Error("timezone file created")
	}
}

func TestSetEnvKeys(t *testing.T) {
	keys := []string{"A", "B"}
	tests := []struct {
		in   string
		vals map[string]string
		want string
	}{
		{"", map[string]string{"A": "1", "B": "2"}, "A=1\nB=2\n"},
		{"# c\nB=old\nX=y\nA=old\nA=dup", map[string]string{"A": "1", "B": "2"}, "# c\nB=2\nX=y\nA=1\n"},
		{"export A=old\n", map[string]string{"A": "1", "B": ""}, "A=1\n"},
		{"B=gone\n", map[string]string{"A": "1", "B": ""}, "A=1\n"},
	}
	for _, tc := range tests {
		if got := string(setEnvKeys([]byte(tc.in), keys, tc.vals, false)); got != tc.want {
			t.Errorf("setEnvKeys(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := string(setEnvKeys([]byte("B=\"x\"\n"), keys, map[string]string{"A": "", "B": "y"}, true)); got != "B=\"y\"\nA=\"\"\n" {
		t.Errorf("quoted: %q", got)
	}
}

func FuzzSetEnvKeys(f *testing.F) {
	f.Add("LANG=C\nLC_ALL=x\n# c\n", "de_DE.UTF-8")
	f.Add("export LANG=\"a b\"\nLANG=", "C")
	f.Fuzz(func(t *testing.T, in, v string) {
		if !validValue(v) || v == "" {
			return
		}
		keys := []string{"LANG"}
		vals := map[string]string{"LANG": v}
		once := setEnvKeys([]byte(in), keys, vals, false)
		twice := setEnvKeys(once, keys, vals, false)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent: %q then %q", once, twice)
		}
		if envValue(once, "LANG") != v {
			t.Fatalf("LANG not set in %q", once)
		}
	})
}

func FuzzUpdateLocalhost(f *testing.F) {
	f.Add("127.0.0.1 localhost\n127.0.1.1 old\n")
	f.Add("127.0.1.1")
	f.Add("#\n\n127.0.1.1 h.example.com h # x\n")
	f.Fuzz(func(t *testing.T, in string) {
		once := updateLocalhost([]byte(in), "h", "h.example.com")
		twice := updateLocalhost(once, "h", "h.example.com")
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent: %q then %q", once, twice)
		}
		n := 0
		for _, l := range lines(once) {
			if f := strings.Fields(strings.SplitN(l, "#", 2)[0]); len(f) > 0 && f[0] == "127.0.1.1" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d 127.0.1.1 lines in %q", n, once)
		}
	})
}

// A FIFO planted where the zone file should be is refused, not opened for
// a read that would wait forever.
func TestTimezoneFIFOIsNotAZone(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"usr/share/zoneinfo/": ""})
	if err := unix.Mkfifo(filepath.Join(root.Dir, "usr/share/zoneinfo/Fifo"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Plan(&config.Config{System: config.System{Timezone: set("Fifo", 5)}}, root)
	if err == nil || !strings.Contains(err.Error(), "not a TZif") {
		t.Fatalf("error %v, want the FIFO refused as not a TZif zone file", err)
	}
}
