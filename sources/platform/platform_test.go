package platform

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
)

// tree writes a fake /proc + /sys under a temp dir.
func tree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const dmi = "/sys/class/dmi/id/"

func TestScenarios(t *testing.T) {
	cases := []struct {
		name        string
		files       map[string]string
		configDrive bool
		want        []string // Name()@presence
		wantErr     string
	}{
		{"ec2 xen by hypervisor uuid", map[string]string{
			"/proc/cmdline": "root=/dev/xvda1", "/sys/hypervisor/type": "xen",
			"/sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef",
		}, false, []string{"ec2@needs network"}, ""},
		{"ec2 hvm product_uuid", map[string]string{
			dmi + "sys_vendor": "Xen", dmi + "product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF",
		}, false, []string{"ec2@needs network"}, ""},
		{"ec2 hvm product_uuid swapped", map[string]string{
			dmi + "sys_vendor": "Xen", dmi + "product_uuid": "45E12AEC-DCD1-B213-94ED-012345ABCDEF",
		}, false, []string{"ec2@needs network"}, ""},
		{"ec2 nitro vendor", map[string]string{
			dmi + "sys_vendor": "Amazon EC2", dmi + "product_name": "m5.large",
		}, false, []string{"ec2@needs network"}, ""},
		{"openstack product_name", map[string]string{
			dmi + "product_name": "OpenStack Nova", dmi + "sys_vendor": "OpenStack Foundation",
		}, false, []string{"openstack@needs network"}, ""},
		{"openstack with config drive", map[string]string{
			dmi + "product_name": "OpenStack Compute",
		}, true, nil, ""},
		{"openstack asset tag", map[string]string{
			dmi + "product_name": "KVM", dmi + "chassis_asset_tag": "HUAWEICLOUD",
		}, false, []string{"openstack@needs network"}, ""},
		{"nocloud serial", map[string]string{
			dmi + "product_serial": "ds=nocloud;s=http://10.0.2.2:8000/;i=iid-1",
		}, false, []string{"nocloud-line@needs network"}, ""},
		{"nocloud cmdline local seed", map[string]string{
			"/proc/cmdline": `quiet "ds=nocloud;s=/seed/"`,
		}, false, []string{"nocloud-line@present"}, ""},
		{"kernel url and ec2", map[string]string{
			"/proc/cmdline":        "ignition.config.url=https://example.org/c.ign provision.url=http://10.0.0.1/cfg",
			"/sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef",
		}, false, []string{"url@needs network", "url@needs network", "ec2@needs network"}, ""},
		{"tftp url reported", map[string]string{
			"/proc/cmdline": "combustion.url=tftp://10.0.0.1/script",
		}, false, nil, "tftp is not supported"},
		{"plain qemu", map[string]string{
			"/proc/cmdline": "root=/dev/vda2 console=ttyS0", dmi + "sys_vendor": "QEMU",
			dmi + "product_name": "Standard PC (Q35 + ICH9, 2009)", dmi + "product_uuid": "4f1b3c1e-1a2b-4c3d-9e8f-0123456789ab",
			"/sys/firmware/qemu_fw_cfg/": "",
		}, false, nil, ""},
		{"bare metal, nothing", map[string]string{}, false, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Read(tree(t, c.files))
			if err != nil {
				t.Fatal(err)
			}
			cands, err := Decide(f, c.configDrive)
			if c.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("want error %q, got %v", c.wantErr, err)
			}
			var got []string
			for _, x := range cands {
				got = append(got, x.Source.Name()+"@"+x.Presence.String())
				if x.Reason == "" {
					t.Errorf("%s: no reason", x.Source.Name())
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if _, fw := c.files["/sys/firmware/qemu_fw_cfg/"]; f.FwCfg != fw {
				t.Errorf("FwCfg = %v", f.FwCfg)
			}
			if NeedsNetwork(cands) != slices.ContainsFunc(c.want, func(s string) bool { return strings.HasSuffix(s, "needs network") }) {
				t.Error("NeedsNetwork disagrees")
			}
		})
	}
}

func TestReadFacts(t *testing.T) {
	root := tree(t, map[string]string{
		"/proc/cmdline":        `BOOT_IMAGE=/vmlinuz root=UUID=abc "provision.url=http://h/a b" ds="nocloud;h=x y"`,
		dmi + "sys_vendor":     "  QEMU  ",
		dmi + "product_serial": "",
		"/sys/hypervisor/type": "xen",
		"/sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef",
	})
	f, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"BOOT_IMAGE=/vmlinuz", "root=UUID=abc", "provision.url=http://h/a b", "ds=nocloud;h=x y"}
	if !slices.Equal(f.Cmdline, want) {
		t.Errorf("cmdline %q", f.Cmdline)
	}
	if f.DMI["sys_vendor"] != "QEMU" || len(f.DMI) != 1 {
		t.Errorf("dmi %v", f.DMI)
	}
	if f.HypervisorType != "xen" || f.HypervisorUUID != "ec2e1916-9099-7caf-fd21-012345abcdef" || f.FwCfg || f.Prefix != root {
		t.Errorf("facts %+v", f)
	}
}

func TestSplitCmdline(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  a  b\tc\n", []string{"a", "b", "c"}},
		{`a="b c" d`, []string{"a=b c", "d"}},
		{`"a=b c" d`, []string{"a=b c", "d"}},
		{`"a b"`, []string{"a b"}},
		{`a=b"c d"e f`, []string{`a=b"c d"e`, "f"}},
		{`a="unterminated b`, []string{"a=unterminated b"}},
		{`""`, nil},
		{`x="" y`, []string{"x=", "y"}},
	}
	for _, c := range cases {
		if got := SplitCmdline(c.in); !slices.Equal(got, c.want) {
			t.Errorf("%q: got %q want %q", c.in, got, c.want)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(SplitCmdline(`quiet combustion.firstboot cloud-init=disabled provision.on_failure=continue provision.device_timeout=30 provision.script_timeout=2m combustion.url=http://a/1 provision.url=http://b/1 provision.url=http://b/2`))
	if err != nil {
		t.Fatal(err)
	}
	if !o.FirstBoot || o.FirstBootParam != "combustion.firstboot" || !o.Disabled || o.DisabledBy != "cloud-init=disabled" ||
		o.OnFailure != OnFailureContinue || o.DeviceTimeout != 30*time.Second || o.ScriptTimeout != 2*time.Minute {
		t.Errorf("options %+v", o)
	}
	want := []KernelURL{{"provision.url", "http://b/2"}, {"combustion.url", "http://a/1"}}
	if !slices.Equal(o.URLs, want) {
		t.Errorf("urls %v", o.URLs)
	}

	o, err = ParseOptions(nil)
	if err != nil || o.FirstBoot || o.Disabled || o.OnFailure != OnFailureEmergency || o.DeviceTimeout != DefaultDeviceTimeout || o.ScriptTimeout != 0 {
		t.Errorf("defaults %+v %v", o, err)
	}

	o, err = ParseOptions([]string{"provision.on_failure=explode", "provision.device_timeout=-3s", "provision.script_timeout=soon", "ignition.firstboot=0", "provision=enabled", "provision.url="})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, w := range []string{"explode", "device_timeout", "script_timeout", "provision.url"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if o.OnFailure != OnFailureEmergency || o.DeviceTimeout != DefaultDeviceTimeout || o.FirstBoot || o.Disabled {
		t.Errorf("defaults not kept: %+v", o)
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		spec   string
		ok     bool
		name   string
		errSub string
	}{
		{"ec2", true, "ec2", ""},
		{"ec2:http://127.0.0.1:8080", true, "ec2", ""},
		{"openstack:http://127.0.0.1:8080/", true, "openstack", ""},
		{"nocloud:http://127.0.0.1:8000/seed/", true, "nocloud-line", ""},
		{"https://example.org/config", true, "url", ""},
		{"ignition:https://example.org/c.ign", true, "url", ""},
		{"tftp://10.0.0.1/x", true, "", "tftp"},
		{"ec2:ftp://x", true, "", "http"},
		{"nocloud:/srv/seed", false, "", ""},
		{"/srv/seed", false, "", ""},
		{"seed.iso", false, "", ""},
	}
	for _, c := range cases {
		s, ok, err := Parse(c.spec)
		if ok != c.ok {
			t.Errorf("%s: ok=%v", c.spec, ok)
			continue
		}
		if c.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), c.errSub) {
				t.Errorf("%s: want error %q, got %v", c.spec, c.errSub, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.spec, err)
			continue
		}
		if ok && (s.Name() != c.name || s.Detect(&sources.Facts{}) != sources.NeedsNetwork) {
			t.Errorf("%s: got %s %v", c.spec, s.Name(), s.Detect(&sources.Facts{}))
		}
	}
	s, _, _ := Parse("ignition:https://example.org/c.ign")
	if k := s.(interface{ Kind() sources.Kind }).Kind(); k != sources.KindIgnition {
		t.Errorf("ignition kind %s", k)
	}
}

// Deciding on a machine with nothing must choose no network source and open
// no socket.
func TestNothingOpensNoSocket(t *testing.T) {
	root := tree(t, map[string]string{"/proc/cmdline": "root=/dev/sda2 quiet", dmi + "sys_vendor": "Dell Inc."})
	before := sockets(t)
	f, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	cands, err := Decide(f, false)
	if err != nil || len(cands) != 0 || NeedsNetwork(cands) {
		t.Fatalf("got %v, %v", cands, err)
	}
	if after := sockets(t); after != before {
		t.Fatalf("sockets: %d before, %d after", before, after)
	}
}

func sockets(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func BenchmarkDecideNothing(b *testing.B) {
	root := tree(b, map[string]string{
		"/proc/cmdline": "BOOT_IMAGE=/boot/vmlinuz root=UUID=1234 rw quiet splash", dmi + "sys_vendor": "LENOVO",
		dmi + "product_name": "20XW", dmi + "product_uuid": "4f1b3c1e-1a2b-4c3d-9e8f-0123456789ab",
	})
	for b.Loop() {
		f, err := Read(root)
		if err != nil {
			b.Fatal(err)
		}
		if c, _ := Decide(f, false); len(c) != 0 {
			b.Fatal("network source chosen")
		}
	}
}

func FuzzSplitCmdline(f *testing.F) {
	for _, s := range []string{`a="b c" d`, `"x`, `ds=nocloud;s=http://h/ provision.url="http://h/a b"#sha256=00`, "\"\"\"=\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words := SplitCmdline(s)
		for _, w := range words {
			if w == "" {
				t.Fatal("empty word")
			}
		}
		// Words without quotes or spaces survive a round trip.
		var plain []string
		for _, w := range words {
			if !strings.ContainsAny(w, "\" \t\n\v\f\r") {
				plain = append(plain, w)
			}
		}
		if again := SplitCmdline(strings.Join(plain, " ")); !slices.Equal(again, plain) {
			t.Fatalf("round trip %q -> %q", plain, again)
		}
		_, _ = ParseOptions(words)
		_, _ = Decide(&sources.Facts{Cmdline: words}, false)
	})
}
