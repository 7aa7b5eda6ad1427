package e2e

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// These run in every `go test`: tier C's pieces, without a VM or network.

var updateTierC = flag.Bool("update-tierc", false, "rewrite testdata/tierc golden files")

// The arm64 kernel's real module graph (a subset of Debian's modules.dep)
// resolves to the load order the initramfs uses: dependencies first, the
// checksum drivers btrfs only soft-depends on before it, built-ins skipped.
func TestTierCModuleOrder(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{Version: "6.1.0-56-arm64", Root: dir}
	if err := os.MkdirAll(k.ModDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"modules.dep", "modules.builtin"} {
		b, err := os.ReadFile(filepath.Join("testdata", "tierc", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(k.ModDir(), f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := LoadModules(k)
	if err != nil {
		t.Fatal(err)
	}
	order, err := ms.Resolve(TierCModules)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(order, "\n") + "\n"
	golden := filepath.Join("testdata", "tierc", "load-order.golden")
	if *updateTierC {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("load order:\n%s\nwant (%s):\n%s", got, golden, want)
	}
	pos := map[string]int{}
	for i, p := range order {
		pos[modName(p)] = i
	}
	for _, soft := range []string{"crc32c_generic", "blake2b_generic", "xxhash_generic"} {
		if i, ok := pos[soft]; !ok || i > pos["btrfs"] {
			t.Errorf("%s is not loaded before btrfs: %q", soft, order)
		}
	}
}

func TestParseAPTConfigShell(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{"LIST='/etc/apt/sources.list'\nPARTS='/etc/apt/sources.list.d/'\n",
			map[string]string{"LIST": "/etc/apt/sources.list", "PARTS": "/etc/apt/sources.list.d/"}},
		{"X='it'\\''s'\n", map[string]string{"X": "it's"}},
		{"", map[string]string{}},
		{"garbage\n=x\n", map[string]string{}},
		{"A=unquoted", map[string]string{"A": "unquoted"}},
	} {
		if got := parseAPTConfigShell(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseAPTConfigShell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The private configuration must keep every path apt writes inside base and
// must never touch the host's dpkg status.
func TestForeignAPTArgs(t *testing.T) {
	base := "/cache/apt-arm64"
	args := foreignAPTArgs("arm64", base)
	opts := map[string]string{}
	for i := 0; i < len(args); i += 2 {
		if args[i] != "-o" || i+1 >= len(args) {
			t.Fatalf("not -o pairs: %q", args)
		}
		k, v, _ := strings.Cut(args[i+1], "=")
		opts[k] = v
	}
	if opts["APT::Architecture"] != "arm64" || opts["APT::Architectures"] != "arm64" {
		t.Errorf("architecture options %q", opts)
	}
	for _, k := range []string{"Dir::State", "Dir::State::status", "Dir::Cache", "Dir::Etc::SourceList", "Dir::Etc::SourceParts"} {
		if v, ok := opts[k]; !ok || !strings.HasPrefix(v, base+"/") {
			t.Errorf("%s = %q, want a path below %s", k, v, base)
		}
	}
}

func TestELFMachine(t *testing.T) {
	dir := t.TempDir()
	header := func(machine uint16) []byte {
		h := make([]byte, 64)
		copy(h, "\x7fELF\x02\x01\x01")
		h[18], h[19] = byte(machine), byte(machine>>8)
		return h
	}
	for _, tc := range []struct {
		name string
		data []byte
		want uint16
		ok   bool
	}{
		{"aarch64", header(ELFAArch64), ELFAArch64, true},
		{"x86-64", header(ELFX8664), ELFX8664, true},
		{"script", []byte("#!/bin/sh\necho not an ELF file at all\n"), 0, false},
		{"short", []byte("\x7fELF"), 0, false},
		{"big-endian", append([]byte("\x7fELF\x02\x02"), make([]byte, 58)...), 0, false},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ELFMachine(p)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%s: ELFMachine = %d, %v; want %d (ok %v)", tc.name, got, err, tc.want, tc.ok)
		}
	}
	// The test binary itself is the host's architecture.
	self, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	want := map[string]uint16{"amd64": ELFX8664, "arm64": ELFAArch64}[runtime.GOARCH]
	if want == 0 || runtime.GOOS != "linux" {
		return
	}
	if got, err := ELFMachine(self); err != nil || got != want {
		t.Errorf("ELFMachine(test binary) = %d, %v; want %d", got, err, want)
	}
}

func FuzzParseAPTConfigShell(f *testing.F) {
	f.Add("LIST='/etc/apt/sources.list'\nPARTS='/etc/apt/sources.list.d/'\n")
	f.Add("X='it'\\''s'\n")
	f.Add("='\n'''=")
	f.Fuzz(func(t *testing.T, s string) {
		for k, v := range parseAPTConfigShell(s) {
			if k == "" || strings.Contains(k, "\n") || strings.Contains(v, "\n") {
				t.Fatalf("parseAPTConfigShell(%q): entry %q=%q", s, k, v)
			}
		}
	})
}
