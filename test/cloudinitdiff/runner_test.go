package cloudinitdiff

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// seed is one NoCloud seed: user-data (a #cloud-config document) and
// meta-data.
type seed struct {
	userData string
	metaData string
}

const defaultMetaData = "instance-id: iid-cloudinitdiff\nlocal-hostname: cidiff\n"

func (sd seed) files() map[string]string {
	md := sd.metaData
	if md == "" {
		md = defaultMetaData
	}
	return map[string]string{"user-data": "#cloud-config\n" + sd.userData, "meta-data": md}
}

// callLog is where the stand-ins below record what cloud-init asked of
// them, in the cloud-init copy.
const callLog = "/var/tmp/cloudinitdiff-calls.log"

// standIns replace, in the cloud-init copy only, the commands whose real
// effect would reach this host from a chroot: swapon -a would give the
// host the swap file, mount -a would mount the test's devices, a service
// (re)start would start a daemon, apt-get would install. Each records its
// arguments. systemctl's enable and disable work offline on the tree, as
// on an image, so they go to the real one.
var standIns = map[string]string{
	"swapon":  "#!/bin/sh\necho \"swapon $*\" >> " + callLog + "\n",
	"mount":   "#!/bin/sh\necho \"mount $*\" >> " + callLog + "\n",
	"apt-get": "#!/bin/sh\necho \"apt-get $*\" >> " + callLog + "\n",
	"service": "#!/bin/sh\necho \"service $*\" >> " + callLog + "\n",
	"systemctl": "#!/bin/sh\necho \"systemctl $*\" >> " + callLog + "\n" +
		"case \"$1\" in enable|disable|mask|unmask|preset|is-enabled) exec /usr/bin/systemctl \"$@\";; esac\n",
}

// cloudInitCfg makes cloud-init's init stage run exactly the case's
// modules (each as a fresh instance runs it) and render no network
// configuration; the config and final stages run nothing.
func cloudInitCfg(modules []string) string {
	return "network: {config: disabled}\ncloud_init_modules: [" + strings.Join(modules, ", ") +
		"]\ncloud_config_modules: []\ncloud_final_modules: []\n"
}

// runCloudInit applies sd with the real cloud-init in tree: its init
// stage finds the NoCloud seed, consumes the user-data and runs modules,
// as a first boot runs them (one process per case: cloud-init's start-up
// is most of a case's time). It runs in a chroot with /proc, /sys and
// /dev, in a mount and UTS namespace of its own (cc_set_hostname sets the
// hostname). A module's failure is in the output, not an error: the
// comparison says what it left.
func runCloudInit(t *testing.T, tree string, sd seed, modules ...string) string {
	t.Helper()
	for name, data := range sd.files() {
		writeFile(t, tree, "/var/lib/cloud/seed/nocloud/"+name, data, 0o600)
	}
	writeFile(t, tree, "/etc/cloud/cloud.cfg.d/99-cloudinitdiff.cfg", cloudInitCfg(modules), 0o644)
	for name, script := range standIns {
		writeFile(t, tree, "/usr/local/sbin/"+name, script, 0o755)
	}
	// cloud-init's uses_systemd(): systemctl rather than service.
	if err := os.MkdirAll(filepath.Join(tree, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	const inNS = `set -e
mount --bind "$1" "$1"
mount -t proc proc "$1/proc"
mount --rbind /sys "$1/sys"
mount --rbind /dev "$1/dev"
exec chroot "$1" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root SYSTEMD_OFFLINE=1 cloud-init init`
	cmd := exec.Command("unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", "-c", inNS, "sh", tree)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("cloud-init in %s: %v\n%s", tree, err, out.String())
	}
	// What the modules logged at WARNING and above is in the log file.
	var warnings []string
	for _, l := range strings.Split(readOptional(t, tree, "/var/log/cloud-init.log"), "\n") {
		if strings.Contains(l, "[WARNING]") || strings.Contains(l, "[ERROR]") {
			warnings = append(warnings, l)
		}
	}
	return out.String() + strings.Join(warnings, "\n") + "\n" + readOptional(t, tree, callLog)
}

// runProvision applies sd with provision's binary to tree, from a NoCloud
// seed directory outside it, as `provision run --root` does on an image.
func (s *suite) runProvision(t *testing.T, tree string, sd seed) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range sd.files() {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(s.binary, "run", "--root", tree, "--source", dir, "--force", "--report", filepath.Join(t.TempDir(), "report.json"))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("provision run --root %s: %v\n%s", tree, err, out.String())
	}
	return out.String()
}

// writeFile writes p (absolute in the tree) with its parents.
func writeFile(t *testing.T, tree, p, data string, mode os.FileMode) {
	t.Helper()
	host := filepath.Join(tree, p)
	if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(host, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(host, mode); err != nil {
		t.Fatal(err)
	}
}

func readOptional(t *testing.T, tree, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tree, p))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func readFile(t *testing.T, tree, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(tree, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// indent prefixes every line of s with n spaces, for a YAML block scalar.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = pad + l
	}
	return strings.Join(lines, "\n")
}
