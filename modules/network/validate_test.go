package network

// These tests feed our output to the real parsers: NetworkManager's nmcli
// (offline, from Debian's packages unpacked into a cache, no daemon) and
// systemd-networkd plus udev's .link parser, run in a private network and
// mount namespace with the files bind-mounted over /etc/systemd/network.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func cacheDir() string {
	if d := os.Getenv("PROVISION_E2E_CACHE"); d != "" {
		return d
	}
	return "/var/cache/provision-e2e"
}

var unpackMu sync.Mutex

// unpackDebs returns <cache>/<name>/root holding the given Debian packages,
// downloading them with apt-get download and unpacking with dpkg-deb -x the
// first time. Tests skip when that is not possible here.
func unpackDebs(t *testing.T, name string, pkgs ...string) string {
	t.Helper()
	unpackMu.Lock()
	defer unpackMu.Unlock()
	dir := filepath.Join(cacheDir(), name)
	root := filepath.Join(dir, "root")
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return root
	}
	if testing.Short() {
		t.Skipf("%s not unpacked in %s and -short forbids fetching it", name, dir)
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("cannot fetch %v: no %s", pkgs, tool)
		}
	}
	debs := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		t.Skipf("cannot create cache %s: %v", dir, err)
	}
	cmd := exec.Command("apt-get", append([]string{"download"}, pkgs...)...)
	cmd.Dir = debs
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("apt-get download %v failed (no Debian archive reachable?): %v\n%s", pkgs, err, out)
	}
	tmp := root + ".tmp"
	_ = os.RemoveAll(tmp)
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	for _, f := range files {
		if out, err := exec.Command("dpkg-deb", "-x", f, tmp).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v\n%s", f, err, out)
		}
	}
	_ = os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// keyfile parses an INI file into section -> key -> value.
func keyfile(data []byte) map[string]map[string]string {
	out := map[string]map[string]string{}
	var cur map[string]string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string]string{}
			out[line[1:len(line)-1]] = cur
		default:
			k, v, _ := strings.Cut(line, "=")
			if cur != nil {
				cur[k] = v
			}
		}
	}
	return out
}

// nmDefaults are NetworkManager's property defaults (nm-settings(5)); a key
// with that value is omitted from nmcli's output without being lost.
var nmDefaults = map[string]string{
	"bridge.stp": "true", "bridge.forward-delay": "15", "bridge.hello-time": "2",
	"bridge.max-age": "20", "bridge.ageing-time": "300", "bridge.priority": "32768",
	"bridge-port.priority": "32", "bridge-port.path-cost": "100",
}

// TestNMCLIAcceptsKeyfiles runs `nmcli --offline connection modify` over
// every rendered profile. nmcli rejects invalid values but silently drops
// keys it does not know, so every key we wrote must come back unchanged.
func TestNMCLIAcceptsKeyfiles(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the unpacked nmcli is Debian amd64")
	}
	root := unpackDebs(t, "nm", "network-manager", "libnm0")
	nmcli := filepath.Join(root, "usr/bin/nmcli")
	libdir := filepath.Join(root, "usr/lib/x86_64-linux-gnu")
	if _, err := os.Stat(nmcli); err != nil {
		t.Skipf("no nmcli in %s: %v", root, err)
	}
	// nmcli --offline appeared in NetworkManager 1.42.
	ver := exec.Command(nmcli, "--version")
	ver.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libdir)
	if out, err := ver.CombinedOutput(); err != nil {
		t.Skipf("nmcli does not run here: %v\n%s", err, out)
	}
	for _, dir := range goldenDirs(t) {
		m, err := Parse(loadDoc(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		files, err := RenderNM(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Path, ".nmconnection") {
				continue
			}
			t.Run(filepath.Base(dir)+"/"+path.Base(f.Path), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, nmcli, "--offline", "connection", "modify")
				cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libdir)
				cmd.Stdin = bytes.NewReader(f.Data)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("nmcli rejects %s: %v: %s\n%s", f.Path, err, stderr.String(), f.Data)
				}
				in, got := keyfile(f.Data), keyfile(out)
				for sec, kv := range in {
					for k, v := range kv {
						g, ok := got[sec][k]
						switch {
						case !ok && nmDefaults[sec+"."+k] == v:
							// nmcli leaves out values equal to the default.
						case !ok:
							t.Errorf("[%s] %s=%s dropped by nmcli (unknown key)", sec, k, v)
						case g != v:
							t.Errorf("[%s] %s=%s came back as %s", sec, k, v, g)
						}
					}
				}
				if t.Failed() {
					t.Logf("input:\n%s\noutput:\n%s", f.Data, out)
				}
			})
		}
	}
}

// TestNetworkdAcceptsFiles runs the real systemd-networkd (and udevadm's
// .link parser) over each case's files in a private network and mount
// namespace. Both log unknown keys and bad values as "<file>:<line>: ...";
// any such line fails the test.
func TestNetworkdAcceptsFiles(t *testing.T) {
	networkd := ""
	for _, p := range []string{"/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"} {
		if _, err := os.Stat(p); err == nil {
			networkd = p
			break
		}
	}
	if networkd == "" {
		t.Skip("no systemd-networkd on this host")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network and mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	udevadm := ""
	if p, err := exec.LookPath("udevadm"); err == nil {
		udevadm = p
	} else if runtime.GOARCH == "amd64" {
		udevadm = filepath.Join(unpackDebs(t, "udev", "udev"), "bin/udevadm")
	}
	for _, dir := range goldenDirs(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			m, err := Parse(loadDoc(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			files, err := RenderNetworkd(m)
			if err != nil {
				t.Fatal(err)
			}
			conf := t.TempDir()
			hasLink := false
			for _, f := range files {
				hasLink = hasLink || strings.HasSuffix(f.Path, ".link")
				if err := os.WriteFile(filepath.Join(conf, path.Base(f.Path)), f.Data, f.Mode); err != nil {
					t.Fatal(err)
				}
			}
			script := fmt.Sprintf("mount --bind %q /etc/systemd/network && mount -t tmpfs tmpfs /run/systemd || exit 99\n", conf)
			if hasLink && udevadm != "" {
				script += fmt.Sprintf("%q test-builtin net_setup_link /sys/class/net/lo 2>&1\n", udevadm)
			}
			script += fmt.Sprintf("exec timeout 15 %q 2>&1\n", networkd)
			lines := runNamespaced(t, script)
			var bad []string
			parsed := false
			for _, l := range lines {
				if strings.Contains(l, "/etc/systemd/network/") && !strings.Contains(l, "Parsed configuration file") {
					bad = append(bad, l)
				}
				parsed = parsed || strings.Contains(l, "Enumeration completed")
			}
			if !parsed {
				t.Fatalf("networkd never finished loading its configuration:\n%s", strings.Join(lines, "\n"))
			}
			for _, l := range bad {
				t.Errorf("networkd/udev: %s", l)
			}
		})
	}
}

// runNamespaced runs script under unshare -n -m and returns its log lines,
// stopping networkd once it reports that its configuration is loaded.
func runNamespaced(t *testing.T, script string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-n", "-m", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=debug", "SYSTEMD_LOG_TARGET=console", "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start unshare: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		lines = append(lines, l)
		if strings.Contains(l, "Enumeration completed") {
			// timeout(1) passes SIGTERM on to networkd.
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 {
		t.Skipf("cannot bind-mount in a private mount namespace here:\n%s", strings.Join(lines, "\n"))
	}
	return lines
}
