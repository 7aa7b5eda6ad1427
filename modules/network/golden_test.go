package network

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite golden files")

// plainTree converts yaml.v3's decoded values to the shapes the config
// parsers hand over (int64 for integers).
func plainTree(v any) any {
	switch t := v.(type) {
	case int:
		return int64(t)
	case map[string]any:
		for k, e := range t {
			t[k] = plainTree(e)
		}
	case []any:
		for n, e := range t {
			t[n] = plainTree(e)
		}
	}
	return v
}

// loadDoc reads testdata input; the directory name's prefix is the format.
func loadDoc(t testing.TB, dir string) config.NetworkDoc {
	t.Helper()
	formats := map[string]string{"v1": FormatV1, "v2": FormatV2, "openstack": FormatOpenStack, "ec2": FormatEC2}
	format := formats[strings.SplitN(filepath.Base(dir), "-", 2)[0]]
	if format == "" {
		t.Fatalf("%s: no format for this name", dir)
	}
	var data any
	if b, err := os.ReadFile(filepath.Join(dir, "input.json")); err == nil {
		if err := json.Unmarshal(b, &data); err != nil {
			t.Fatal(err)
		}
	} else {
		b, err := os.ReadFile(filepath.Join(dir, "input.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &data); err != nil {
			t.Fatal(err)
		}
		data = plainTree(data)
	}
	return config.NetworkDoc{Origin: config.Origin{Source: "test", File: filepath.Base(dir)}, Format: format, Data: data}
}

func goldenDirs(t testing.TB) []string {
	dirs, err := filepath.Glob("testdata/golden/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	return dirs
}

func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("golden %s: %v (run with -update)", file, err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

// TestGolden renders every input for both stacks and compares each file, and
// the list of files, with testdata.
func TestGolden(t *testing.T) {
	for _, dir := range goldenDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			doc := loadDoc(t, dir)
			for _, stack := range []Stack{NetworkManager, Networkd} {
				m, err := Parse(doc)
				if err != nil {
					t.Fatal(err)
				}
				files, err := Render(m, stack)
				if err != nil {
					t.Fatal(err)
				}
				var list []string
				for _, f := range files {
					list = append(list, f.Mode.String()+" "+f.Path+"  # "+f.Detail)
					checkGolden(t, filepath.Join(dir, string(stack), path.Base(f.Path)), f.Data)
				}
				checkGolden(t, filepath.Join(dir, string(stack), "FILES"), []byte(strings.Join(list, "\n")+"\n"))
				if !*update {
					// No stale golden files: everything there was rendered.
					ents, _ := os.ReadDir(filepath.Join(dir, string(stack)))
					for _, e := range ents {
						if e.Name() == "FILES" {
							continue
						}
						found := false
						for _, f := range files {
							found = found || path.Base(f.Path) == e.Name()
						}
						if !found {
							t.Errorf("%s/%s: golden file not rendered any more", stack, e.Name())
						}
					}
				}
			}
		})
	}
}

func newRoot(t *testing.T, markers ...string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for _, m := range markers {
		p := filepath.Join(dir, m)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestPlanApply(t *testing.T) {
	doc := loadDoc(t, "testdata/golden/v1-full")
	for _, tc := range []struct {
		name    string
		markers []string
		stack   Stack
	}{
		{"nm-by-nmcli", []string{"usr/bin/nmcli", "usr/lib/systemd/systemd-networkd"}, NetworkManager},
		{"nm-by-unit", []string{"usr/lib/systemd/system/NetworkManager.service"}, NetworkManager},
		{"networkd", []string{"lib/systemd/systemd-networkd"}, Networkd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot(t, tc.markers...)
			cfg := &config.Config{Network: []config.NetworkDoc{doc}}
			steps, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			m, _ := Parse(doc)
			want, _ := Render(m, tc.stack)
			if len(steps) != len(want) {
				t.Fatalf("%d steps, want %d files", len(steps), len(want))
			}
			env := &modules.Env{Root: root}
			for n, s := range steps {
				if s.Target != want[n].Path || !strings.HasPrefix(s.Detail, string(tc.stack)+":") {
					t.Errorf("step %d = %s, want %s for %s", n, s, want[n].Path, tc.stack)
				}
				if err := s.Apply(context.Background(), env); err != nil {
					t.Fatal(err)
				}
			}
			for _, f := range want {
				st, err := root.Lstat(f.Path)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != f.Mode {
					t.Errorf("%s: mode %v, want %v", f.Path, st.Mode().Perm(), f.Mode)
				}
				if strings.HasSuffix(f.Path, ".nmconnection") && f.Mode != 0o600 {
					t.Errorf("%s: keyfile mode %v, NetworkManager ignores profiles that are not 0600", f.Path, f.Mode)
				}
			}
			// Applied once, nothing is left to do.
			again, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("second plan has %d steps, first: %s", len(again), again[0])
			}
		})
	}
}

func TestPlanNoStack(t *testing.T) {
	root := newRoot(t)
	doc := loadDoc(t, "testdata/golden/v2-wrapped")
	_, err := Plan(&config.Config{Network: []config.NetworkDoc{doc}}, root)
	if err == nil || !strings.Contains(err.Error(), "test:v2-wrapped") || !strings.Contains(err.Error(), "neither NetworkManager nor systemd-networkd") {
		t.Fatalf("err = %v, want the origin and the missing stacks", err)
	}
}

func TestPlanDisabledAndSuperseded(t *testing.T) {
	first := config.NetworkDoc{Origin: config.Origin{Source: "nocloud", File: "network-config"}, Format: FormatV1, Disabled: true}
	second := loadDoc(t, "testdata/golden/openstack-full")
	steps, err := Plan(&config.Config{Network: []config.NetworkDoc{first, second}}, newRoot(t, "usr/bin/nmcli"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range steps {
		got = append(got, s.String())
	}
	want := []string{
		"network: leave unconfigured (config: disabled) [nocloud:network-config]",
		"network: ignore openstack-network-data (superseded by nocloud:network-config) [test:openstack-full]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestPlanNoRoot(t *testing.T) {
	doc := loadDoc(t, "testdata/golden/ec2-primary")
	steps, err := Plan(&config.Config{Network: []config.NetworkDoc{doc}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Target != NMDir+"/cloud-init-primary.nmconnection" || !strings.Contains(steps[0].Detail, "assumed") {
		t.Fatalf("steps = %v", steps)
	}
}

// TestModelSemantics pins the places where cloud-init's renderers are wrong.
func TestModelSemantics(t *testing.T) {
	render := func(t *testing.T, dir string, stack Stack) map[string]string {
		m, err := Parse(loadDoc(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		files, err := Render(m, stack)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, f := range files {
			out[path.Base(f.Path)] = string(f.Data)
		}
		return out
	}
	nm := render(t, "testdata/golden/openstack-full", NetworkManager)
	tap := nm["cloud-init-tap1a81968a-79.nmconnection"]
	if strings.Contains(tap, "f816:3eff:fe9c:bf3d") {
		t.Errorf("ipv6_slaac address written as static:\n%s", tap)
	}
	for _, want := range []string{"[ipv6]\nmethod=auto", "dns=8.8.8.8;", "mtu=1450"} {
		if !strings.Contains(tap, want) {
			t.Errorf("tap profile lacks %q:\n%s", want, tap)
		}
	}
	bond := nm["cloud-init-bond0.nmconnection"]
	if !strings.Contains(bond, "[ipv4]\nmethod=disabled") {
		t.Errorf("bond0 has IPv6 only; its profile must disable IPv4, not default to DHCP:\n%s", bond)
	}
	if !strings.Contains(bond, "miimon=100") {
		t.Errorf("bond miimon lost:\n%s", bond)
	}

	nd := render(t, "testdata/golden/v1-full", Networkd)
	if _, ok := nd["10-cloud-init-bond0.netdev"]; !ok {
		t.Errorf("no .netdev for bond0: %v", sortedNames(nd))
	}
	if !strings.Contains(nd["10-cloud-init-eth1.network"], "Bond=bond0") {
		t.Errorf("eth1 not enslaved:\n%s", nd["10-cloud-init-eth1.network"])
	}
	if !strings.Contains(nd["10-cloud-init-bond0.network"], "VLAN=bond0.100") {
		t.Errorf("bond0 does not carry its VLAN:\n%s", nd["10-cloud-init-bond0.network"])
	}
	routeTo := "Destination=172.16.0.0/12"
	var holders []string
	for name, data := range nd {
		if strings.Contains(data, routeTo) {
			holders = append(holders, name)
		}
	}
	if len(holders) != 1 || holders[0] != "10-cloud-init-bond0.100.network" {
		t.Errorf("global route placed in %v, want only the VLAN whose subnet holds the gateway", holders)
	}
	if !strings.Contains(nd["10-cloud-init-br0.netdev"], "ForwardDelaySec=4") {
		t.Errorf("bridge forward delay lost:\n%s", nd["10-cloud-init-br0.netdev"])
	}
}

func sortedNames(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
