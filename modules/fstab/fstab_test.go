package fstab

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	data, err := os.ReadFile("testdata/fstab.microos")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse("fstab", data)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Line: 2, Spec: "UUID=2a1c3b4d-0000-4000-8000-000000000001", File: "/", VfsType: "btrfs", Options: []string{"ro"}},
		{Line: 3, Spec: "UUID=2a1c3b4d-0000-4000-8000-000000000001", File: "/var", VfsType: "btrfs", Options: []string{"subvol=/@/var", "x-initrd.mount"}},
		{Line: 4, Spec: "UUID=2a1c3b4d-0000-4000-8000-000000000001", File: "/home", VfsType: "btrfs", Options: []string{"subvol=/@/home"}},
		{Line: 5, Spec: "UUID=2A1C3B4D-0000-4000-8000-000000000001", File: "/root", VfsType: "btrfs", Options: []string{"subvol=/@/root"}, Freq: 0, Passno: 0},
		{Line: 7, Spec: "LABEL=my data", File: "/srv", VfsType: "ext4", Options: []string{"defaults", "nofail"}, Freq: 1, Passno: 2},
		{Line: 8, Spec: "/dev/vda1", File: "/boot/efi", VfsType: "vfat", Options: []string{"utf8"}, Passno: 2},
		{Line: 9, Spec: "overlay", File: "/etc", VfsType: "overlay", Options: []string{"defaults", "upperdir=/sysroot/var/lib/overlay/1/etc", "x-initrd.mount"}},
		{Line: 10, Spec: "/dev/vda3", File: "none", VfsType: "swap", Options: []string{"defaults"}},
		{Line: 11, Spec: "tmpfs", File: "/opt", VfsType: "tmpfs", Options: []string{"size=10m"}},
	}
	if !reflect.DeepEqual(got, want) {
		for i := range got {
			t.Logf("%d: %+v", i, got[i])
		}
		t.Fatal("mismatch")
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"# c\n/dev/sda\n", "fstab:2: expected at least"},
		{"/dev/sda / ext4 defaults x 0\n", "fstab:1: field 5"},
		{"/dev/sda / ext4 defaults 0 -1\n", "fstab:1: field 6"},
	} {
		_, err := Parse("fstab", []byte(tc.in))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		`a\040b`:   "a b",
		`a\011b`:   "a\tb",
		`a\134b`:   `a\b`,
		`a\777b`:   `a\777b`,
		`trail\04`: `trail\04`,
		`\`:        `\`,
	} {
		if got := UnescapeOctal(in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"/srv/with space", `/a\b`, "tab\there", `/\040literal`, "plain"} {
		e := Escape(s)
		if strings.ContainsAny(e, " \t\n") {
			t.Errorf("Escape(%q) = %q still has a blank", s, e)
		}
		got, err := Parse("t", []byte("/dev/x "+e+" auto defaults 0 0\n"))
		if err != nil || len(got) != 1 || got[0].File != s {
			t.Errorf("Escape(%q) = %q, parsed back as %v, %v", s, e, got, err)
		}
	}
}
