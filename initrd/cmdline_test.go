package initrd

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSplitCmdline(t *testing.T) {
	tests := []struct {
		in         string
		words, ini []string
	}{
		{"", nil, nil},
		{"  console=ttyS0   root=/dev/vda\n", []string{"console=ttyS0", "root=/dev/vda"}, nil},
		{`a="b c" "d=e f" g`, []string{"a=b c", "d=e f", "g"}, nil},
		{`root=LABEL=root -- single x=1`, []string{"root=LABEL=root"}, []string{"single", "x=1"}},
		{`a="unterminated rest`, []string{"a=unterminated rest"}, nil},
		{`""`, []string{""}, nil},
	}
	for _, tt := range tests {
		w, i := SplitCmdline(tt.in)
		if !reflect.DeepEqual(w, tt.words) || !reflect.DeepEqual(i, tt.ini) {
			t.Errorf("SplitCmdline(%q) = %q, %q; want %q, %q", tt.in, w, i, tt.words, tt.ini)
		}
	}
}

func TestParseRoot(t *testing.T) {
	tests := []struct {
		in   string
		want RootSpec
		err  string
	}{
		{"/dev/vda2", RootSpec{RootPath, "/dev/vda2"}, ""},
		{"/dev/disk/by-label/root", RootSpec{RootPath, "/dev/disk/by-label/root"}, ""},
		{"LABEL=root", RootSpec{RootLabel, "root"}, ""},
		{`LABEL=my\x20disk`, RootSpec{RootLabel, "my disk"}, ""},
		{"label=ROOT", RootSpec{RootLabel, "ROOT"}, ""},
		{"UUID=0B3A7F1E-1111-2222-3333-444455556666", RootSpec{RootUUID, "0b3a7f1e-1111-2222-3333-444455556666"}, ""},
		{"PARTUUID=ABCDEF01-02", RootSpec{RootPartUUID, "abcdef01-02"}, ""},
		{"PARTLABEL=p.lxroot", RootSpec{RootPartLabel, "p.lxroot"}, ""},
		{"", RootSpec{}, "empty"},
		{"/dev/../etc/passwd", RootSpec{}, "leaves /dev"},
		{"UUID=", RootSpec{}, "want /dev"},
		{"vda1", RootSpec{}, "want /dev"},
		{"ZFS=pool/root", RootSpec{}, "unknown kind"},
		{"PARTUUID=abc/PARTNROFF=1", RootSpec{}, "PARTNROFF"},
	}
	for _, tt := range tests {
		got, err := ParseRoot(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRoot(%q) error = %v, want it to mention %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRoot(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	c, err := ParseCmdline(`BOOT_IMAGE=/vmlinuz console=ttyS0 root=UUID=AA-BB rootfstype=btrfs rootflags="compress=zstd,noatime" rw init=/usr/lib/systemd/systemd provision.on_failure=continue provision.root_timeout=5 -- single`)
	if err != nil {
		t.Fatal(err)
	}
	want := Cmdline{
		Root:        RootSpec{RootUUID, "aa-bb"},
		RootFSType:  "btrfs",
		RootFlags:   "compress=zstd,noatime",
		ReadOnly:    false,
		Init:        "/usr/lib/systemd/systemd",
		OnFailure:   OnFailureContinue,
		RootTimeout: 5 * time.Second,
	}
	c.Params = nil
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got %+v\nwant %+v", *c, want)
	}
	if c.PinsSubvolume() {
		t.Error("PinsSubvolume() = true without subvol=")
	}
}

func TestParseCmdlineDefaults(t *testing.T) {
	c, err := ParseCmdline("quiet")
	if err != nil {
		t.Fatal(err)
	}
	if !c.ReadOnly || c.Init != "/sbin/init" || c.OnFailure != OnFailureEmergency || c.RootTimeout != DefaultRootTimeout || c.Root.Kind != RootNone {
		t.Errorf("defaults: %+v", c)
	}
	// The last of ro/rw wins, as in the kernel.
	if c, _ := ParseCmdline("rw ro"); !c.ReadOnly {
		t.Error("rw ro: want read-only")
	}
	if c, _ := ParseCmdline("ro rw"); c.ReadOnly {
		t.Error("ro rw: want read-write")
	}
}

func TestParseCmdlineErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{"provision.on_failure=panic", "provision.on_failure"},
		{"init=sbin/init", "absolute"},
		{"provision.root_timeout=soon", "root_timeout"},
		{"root=FOO=bar", "unknown kind"},
	}
	for _, tt := range tests {
		c, err := ParseCmdline(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseCmdline(%q) error = %v, want it to mention %q", tt.in, err, tt.err)
		}
		// Defaults survive a bad parameter so the boot can go on.
		if c == nil || c.Init == "" || c.OnFailure == "" {
			t.Errorf("ParseCmdline(%q) lost its defaults: %+v", tt.in, c)
		}
	}
}

func TestPinsSubvolume(t *testing.T) {
	for flags, want := range map[string]bool{
		"":                               false,
		"subvol=@/.snapshots/1/snapshot": true,
		"compress=zstd,subvolid=256":     true,
		"subvolx=1":                      false,
	} {
		c := &Cmdline{RootFlags: flags}
		if got := c.PinsSubvolume(); got != want {
			t.Errorf("PinsSubvolume(%q) = %v, want %v", flags, got, want)
		}
	}
}

func TestInitArgsFromOS(t *testing.T) {
	tests := []struct {
		argv, want []string
	}{
		{[]string{"/bin/provision", "init"}, []string{}},
		{[]string{"/bin/provision", "init", "single", "x"}, []string{"single", "x"}},
		{[]string{"/bin/provision", "init", "--", "-s"}, []string{"-s"}},
		{[]string{"/bin/provision"}, nil},
	}
	for _, tt := range tests {
		got := initArgsFromOS(tt.argv)
		if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("initArgsFromOS(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

func FuzzParseCmdline(f *testing.F) {
	f.Add(`root=LABEL=root rw init=/sbin/init provision.on_failure=continue -- a`)
	f.Add(`a="b c`)
	f.Add(`root=PARTUUID=x/PARTNROFF=1 rootflags=subvol=@`)
	f.Fuzz(func(t *testing.T, s string) {
		c, _ := ParseCmdline(s)
		if c == nil {
			t.Fatal("nil Cmdline")
		}
		if !strings.HasPrefix(c.Init, "/") {
			t.Fatalf("init %q not absolute", c.Init)
		}
		if c.Root.Kind == RootPath && !strings.HasPrefix(c.Root.Value, "/dev/") {
			t.Fatalf("root path %q outside /dev", c.Root.Value)
		}
	})
}

func TestWithSubvolID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"subvol=@/.snapshots/1/snapshot", "subvolid=263"},
		{"compress=lzo,subvol=/@/.snapshots/1/snapshot,noatime", "compress=lzo,noatime,subvolid=263"},
		{"subvolid=258,subvol=@/.snapshots/1/snapshot", "subvolid=263"},
		{"", "subvolid=263"},
	} {
		if got := WithSubvolID(c.in, 263); got != c.want {
			t.Errorf("WithSubvolID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
