package nocloudnet

import (
	"maps"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
)

func TestParseWords(t *testing.T) {
	cases := []struct {
		cmdline string
		ok      bool
		keys    map[string]string
		mode    string
	}{
		{"root=/dev/vda ds=nocloud", true, map[string]string{}, "local"},
		{"ds=nocloud-net", true, map[string]string{}, "net"},
		{"ds=nocloud;s=http://10.0.0.1/seed/;i=iid-1;h=myhost", true,
			map[string]string{"seedfrom": "http://10.0.0.1/seed/", "instance-id": "iid-1", "local-hostname": "myhost"}, "net"},
		{"ds=nocloud-net;seedfrom=file:///seed/;local-hostname=a;instance-id=b", true,
			map[string]string{"seedfrom": "file:///seed/", "local-hostname": "a", "instance-id": "b"}, "local"},
		{"ds=nocloud;s=/var/seed/", true, map[string]string{"seedfrom": "/var/seed/"}, "local"},
		{"ds=nocloud;s=http://x/;dsmode=local", true, map[string]string{"seedfrom": "http://x/", "dsmode": "local"}, "local"},
		// Empty pairs and pairs without "=" are ignored; values keep "=".
		{"ds=nocloud;;h;i=a=b;", true, map[string]string{"instance-id": "a=b"}, "local"},
		// The last ds= word wins.
		{"ds=nocloud;i=first ds=nocloud;i=second", true, map[string]string{"instance-id": "second"}, "local"},
		{"ds=nocloudx;i=a", false, nil, ""},
		{"xds=nocloud", false, nil, ""},
		{"ds=NoCloud", false, nil, ""},
		{"", false, nil, ""},
	}
	for _, c := range cases {
		l, ok := ParseWords(strings.Fields(c.cmdline))
		if ok != c.ok {
			t.Errorf("%q: ok=%v", c.cmdline, ok)
			continue
		}
		if !ok {
			continue
		}
		if !maps.Equal(l.Keys, c.keys) || l.DSMode != c.mode {
			t.Errorf("%q: got %v mode %s, want %v mode %s", c.cmdline, l.Keys, l.DSMode, c.keys, c.mode)
		}
	}
}

func TestFromFacts(t *testing.T) {
	f := &sources.Facts{
		Cmdline: []string{"quiet", "ds=nocloud;h=fromcmdline"},
		DMI: map[string]string{
			"product_serial": "ds=nocloud;s=http://10.0.0.2/__dmi.system-uuid__/;h=fromdmi;i=iid-dmi",
			"product_uuid":   "4f1b3c1e-1a2b-4c3d-9e8f-0123456789ab",
		},
	}
	l, ok := FromFacts(f)
	if !ok {
		t.Fatal("not found")
	}
	want := map[string]string{
		"seedfrom":       "http://10.0.0.2/4f1b3c1e-1a2b-4c3d-9e8f-0123456789ab/",
		"local-hostname": "fromcmdline",
		"instance-id":    "iid-dmi",
	}
	if !maps.Equal(l.Keys, want) || l.From != "dmi+cmdline" {
		t.Fatalf("got %v from %s", l.Keys, l.From)
	}
	if _, ok := FromFacts(&sources.Facts{DMI: map[string]string{"product_serial": "VMware-56 4d"}}); ok {
		t.Error("ordinary serial taken for a NoCloud line")
	}
	if _, ok := FromFacts(nil); ok {
		t.Error("nil facts")
	}
}

func TestSubstDMI(t *testing.T) {
	dmi := map[string]string{"product_serial": "SER1", "sys_vendor": "QEMU"}
	cases := map[string]string{
		"http://h/__dmi.system-serial-number__/":                            "http://h/SER1/",
		"http://h/__dmi.product_serial__/":                                  "http://h/SER1/",
		"http://h/__dmi.system-manufacturer__-__dmi.system-serial-number__": "http://h/QEMU-SER1",
		"http://h/__dmi.chassis-serial-number__/":                           "http://h//",
		"http://h/__dmi.unknown__/":                                         "http://h/__dmi.unknown__/",
		"http://h/__dmi.":                                                   "http://h/__dmi.",
		"plain":                                                             "plain",
	}
	for in, want := range cases {
		if got := SubstDMI(in, dmi); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}

func TestLocation(t *testing.T) {
	cases := []struct{ seed, want string }{
		{"http://h/seed", "http://h/seed/meta-data"},
		{"http://h/seed/", "http://h/seed/meta-data"},
		{"http://h/seed?x=1", "http://h/seed?x=1meta-data"},
		{"http://h/%s.txt", "http://h/meta-data.txt"},
		{"/var/seed", "/var/seed/meta-data"},
	}
	for _, c := range cases {
		if got := Location(c.seed, "meta-data"); got != c.want {
			t.Errorf("%s: got %s want %s", c.seed, got, c.want)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"ds=nocloud;s=http://10.0.0.1/;i=a;h=b",
		"ds=nocloud-net;seedfrom=file:///x/",
		"ds=nocloud;;;=;a==;__dmi.system-uuid__",
		"ds=nocloud;s=http://h/__dmi.system-serial-number____dmi.",
	} {
		f.Add(s)
	}
	dmi := map[string]string{"product_serial": "S", "product_uuid": "U"}
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := ParseLine(s)
		if !ok {
			return
		}
		for k := range l.Keys {
			if k == "" || strings.ContainsAny(k, "; \t\n") {
				t.Fatalf("bad key %q", k)
			}
		}
		if _, explicit := l.Keys["dsmode"]; !explicit && l.DSMode != "local" && l.DSMode != "net" {
			t.Fatalf("dsmode %q", l.DSMode)
		}
		_ = SubstDMI(l.Seed(), dmi)
		_ = Location(l.Seed(), "meta-data")
	})
}
