package e2e

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// (i) No source at all: the agent finds nothing, changes nothing, and the
// boot proceeds into the unchanged root.
func TestTierANoSource(t *testing.T) {
	m := newMachine(t, Plain, nil)
	res := m.boot()
	if !strings.Contains(res.Console, "provision init: switching root") {
		t.Error("console does not show provision init switching root")
	}
	wantContains(t, "console", res.Console, "nothing to do")
	in, _ := m.inspect()
	if in.Default.Path != initialDefault(Plain) {
		t.Errorf("default subvolume changed to %q without any source", in.Default.Path)
	}
	if len(in.Subvolumes) != 0 {
		t.Errorf("subvolumes left behind without any source: %q", in.subvolumePaths())
	}
	wantBootedOnce(t, in)
}

// sshKey is a fresh, valid public key line for the tests' configs.
func sshKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))) + " " + comment
}

func wantContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: %q does not contain %q", what, got, want)
	}
}

// (a) A FAT USB stick labelled "combustion" whose script needs the network
// and copies a sibling file, on a MicroOS (snapper) layout.
func TestTierACombustionUSBStick(t *testing.T) {
	m := newMachine(t, Snapper, nil)
	stick, err := CombustionStick(m.dir, Tree{
		"script": {Mode: 0o755, Data: []byte(`#!/bin/sh
# combustion: network
set -e
echo "e2e-combustion: script running in $(pwd)"
cp hello.txt /etc/hello-from-stick.txt
mkdir -p /var/lib/e2e-combustion
echo done > /var/lib/e2e-combustion/ran
ip -4 addr show | sed -n 's/^ *inet \([0-9.]*\).*/e2e-combustion: address \1/p'
`)},
		"hello.txt": {Mode: 0o644, Data: []byte("hello from the stick\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{stick}
	m.vm.Net = "user"
	res := m.boot()
	wantOK(t, res, "network: netup: eth0: 10.0.2.15/24", "scripts: run combustion script (combustion: network)")
	wantContains(t, "console (the script's own output)", res.Console, "e2e-combustion: script running")
	// qemu's user network leases 10.0.2.15: the initrd network was up
	// before the script ran, as `# combustion: network` asks.
	wantContains(t, "console (the script's view of the network)", res.Console, "e2e-combustion: address 10.0.2.15")
	in, _ := m.inspect()
	wantNewDefault(t, in, Snapper)
	wantBootedOnce(t, in)
	if got := in.read(t, "/etc/hello-from-stick.txt"); got != "hello from the stick\n" {
		t.Errorf("/etc/hello-from-stick.txt = %q", got)
	}
	// /var is @/var in this layout: the script's write must be there, not
	// hidden under the mount point inside the snapshot.
	if got := in.read(t, "/var/lib/e2e-combustion/ran"); got != "done\n" {
		t.Errorf("/var/lib/e2e-combustion/ran = %q", got)
	}
	if _, err := os.Stat(filepath.Join(in.Root(), "var/lib/e2e-combustion")); err == nil {
		t.Error("the script's /var write landed inside the snapshot, under the @/var mount point")
	}
	// Snapper sees the new snapshot.
	num := strings.TrimSuffix(strings.TrimPrefix(in.Default.Path, "@/.snapshots/"), "/snapshot")
	info, err := os.ReadFile(filepath.Join(in.Top, "@/.snapshots", num, "info.xml"))
	if err != nil {
		t.Errorf("snapshot %s has no info.xml: %v", num, err)
	}
	wantContains(t, "info.xml", string(info), "<num>"+num+"</num>")
	wantReport(t, in, "done")
}

const nocloudUserData = `#cloud-config
hostname: e2e-nocloud
users:
  - name: alice
    gecos: Alice E2E
    shell: /bin/sh
    ssh_authorized_keys:
      - %s
write_files:
  - path: /etc/e2e/nocloud.txt
    content: |
      hello from nocloud
    permissions: '0640'
  - path: /var/lib/e2e/from-config.txt
    content: |
      in var
`

// checkNoCloud asserts what nocloudUserData asks for.
func checkNoCloud(t *testing.T, in *Inspection, key, instanceID string) {
	t.Helper()
	wantContains(t, "/etc/passwd", in.read(t, "/etc/passwd"), "alice:x:1000:1000:Alice E2E:/home/alice:/bin/sh")
	wantContains(t, "/etc/shadow", in.read(t, "/etc/shadow"), "alice:!")
	wantContains(t, "/home/alice/.ssh/authorized_keys", in.read(t, "/home/alice/.ssh/authorized_keys"), key)
	if m := in.mode(t, "/home/alice/.ssh/authorized_keys"); m != 0o600 {
		t.Errorf("authorized_keys mode %o, want 600", m)
	}
	if got := strings.TrimSpace(in.read(t, "/etc/hostname")); got != "e2e-nocloud" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := in.read(t, "/etc/e2e/nocloud.txt"); got != "hello from nocloud\n" {
		t.Errorf("/etc/e2e/nocloud.txt = %q", got)
	}
	if m := in.mode(t, "/etc/e2e/nocloud.txt"); m != 0o640 {
		t.Errorf("/etc/e2e/nocloud.txt mode %o, want 640", m)
	}
	if got := in.read(t, "/var/lib/e2e/from-config.txt"); got != "in var\n" {
		t.Errorf("/var/lib/e2e/from-config.txt = %q", got)
	}
	wantContains(t, "recorded instance-id", in.read(t, "/var/lib/provision/instance-id"), instanceID)
	if r := wantReport(t, in, "done"); r.InstanceID != instanceID {
		t.Errorf("report instance_id %q, want %q", r.InstanceID, instanceID)
	}
}

// nocloudMachine is scenario (b)'s machine: snapper layout, a cloud-localds ISO.
func nocloudMachine(t *testing.T) (*machine, string) {
	m := newMachine(t, Snapper, nil)
	key := sshKey(t, "alice@e2e")
	iso, err := NoCloudISO(m.dir, fmt.Sprintf(nocloudUserData, key), "instance-id: iid-e2e-b\nlocal-hostname: e2e-meta\n", "")
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{iso}
	return m, key
}

// (b) A NoCloud ISO made by cloud-localds.
func TestTierANoCloudISO(t *testing.T) {
	m, key := nocloudMachine(t)
	res := m.boot()
	wantOK(t, res, "users: create user alice", "ssh: authorize keys /home/alice/.ssh/authorized_keys", "files: write /etc/e2e/nocloud.txt")
	// The line of where the run's time went, every phase of a run that
	// applied (make bench-vm reads it).
	if took, phases, ok := runPhases(res.Console); !ok || took <= 0 || len(phases) != 14 || phases[0].name != "recover" || phases[13].name != "commit" {
		t.Errorf("provision init's phases: took %v, %v, %v; want the 14 phases from recover to commit", took, phases, ok)
	}
	in, _ := m.inspect()
	wantNewDefault(t, in, Snapper)
	wantBootedOnce(t, in)
	checkNoCloud(t, in, key, "iid-e2e-b")
}

// (c) NoCloud on a FAT image labelled CIDATA (mkfs.vfat + mcopy).
func TestTierANoCloudVFAT(t *testing.T) {
	m := newMachine(t, Plain, nil)
	key := sshKey(t, "alice@e2e")
	img, err := VFATImage(m.dir, "cidata.img", "CIDATA", Tree{
		"user-data": {Mode: 0o644, Data: []byte(fmt.Sprintf(nocloudUserData, key))},
		"meta-data": {Mode: 0o644, Data: []byte("instance-id: iid-e2e-c\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{img}
	res := m.boot()
	wantOK(t, res, "users: create user alice", "files: write /etc/e2e/nocloud.txt")
	in, _ := m.inspect()
	wantNewDefault(t, in, Plain)
	wantBootedOnce(t, in)
	checkNoCloud(t, in, key, "iid-e2e-c")
}

// (d) An OpenStack config drive (ISO labelled config-2, openstack/latest/).
func TestTierAConfigDrive(t *testing.T) {
	m := newMachine(t, Plain, nil)
	key := sshKey(t, "nova@e2e")
	meta := fmt.Sprintf(`{"uuid": "6f2e2e2e-0000-4000-8000-00000000000d", "hostname": "e2e-configdrive", "name": "e2e", "public_keys": {"mykey": %q}}`, key)
	img, err := ConfigDriveISO(m.dir, Tree{
		"meta_data.json": {Mode: 0o644, Data: []byte(meta)},
		"user_data":      {Mode: 0o644, Data: []byte("#cloud-config\ndisable_root: false\nwrite_files:\n  - path: /etc/e2e/configdrive.txt\n    content: from the config drive\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{img}
	res := m.boot()
	wantOK(t, res, "ssh: authorize keys /root/.ssh/authorized_keys", "files: write /etc/e2e/configdrive.txt")
	in, _ := m.inspect()
	wantNewDefault(t, in, Plain)
	wantBootedOnce(t, in)
	if got := in.read(t, "/etc/e2e/configdrive.txt"); got != "from the config drive" {
		t.Errorf("/etc/e2e/configdrive.txt = %q", got)
	}
	if got := strings.TrimSpace(in.read(t, "/etc/hostname")); got != "e2e-configdrive" {
		t.Errorf("/etc/hostname = %q", got)
	}
	// No default user on this target: metadata keys go to root.
	wantContains(t, "/root/.ssh/authorized_keys", in.read(t, "/root/.ssh/authorized_keys"), key)
	wantContains(t, "recorded instance-id", in.read(t, "/var/lib/provision/instance-id"), "6f2e2e2e-0000-4000-8000-00000000000d")
	wantReport(t, in, "done")
}

// (e) A Combustion script passed through QEMU's fw_cfg.
func TestTierAFwCfgScript(t *testing.T) {
	m := newMachine(t, Plain, nil)
	script := filepath.Join(m.dir, "fwcfg-script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'e2e-fwcfg: script running'\necho fw_cfg > /etc/e2e-fwcfg\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m.vm.FwCfg = map[string]string{"opt/org.opensuse.combustion/script": script}
	res := m.boot()
	wantOK(t, res, "scripts: run combustion script [fwcfg:script]")
	wantContains(t, "console (the script's own output)", res.Console, "e2e-fwcfg: script running")
	in, _ := m.inspect()
	wantNewDefault(t, in, Plain)
	wantBootedOnce(t, in)
	if got := in.read(t, "/etc/e2e-fwcfg"); got != "fw_cfg\n" {
		t.Errorf("/etc/e2e-fwcfg = %q", got)
	}
	wantReport(t, in, "done")
}

// imds is an EC2 instance metadata service that insists on IMDSv2 tokens.
type imds struct {
	mu         sync.Mutex
	token      string
	tokenPuts  int
	unauthGets []string
	gets       []string
	files      map[string]string
}

func (s *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut || r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "" {
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		s.tokenPuts++
		fmt.Fprint(w, s.token)
		return
	}
	if r.Header.Get("X-aws-ec2-metadata-token") != s.token {
		s.unauthGets = append(s.unauthGets, r.URL.Path)
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	s.gets = append(s.gets, r.URL.Path)
	body, ok := s.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	fmt.Fprint(w, body)
}

// (f) The EC2 metadata service: qemu's user network makes the host's
// 127.0.0.1:80 the guest's 169.254.169.254; DMI says Amazon.
func TestTierAEC2Metadata(t *testing.T) {
	m := newMachine(t, Plain, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:80")
	if err != nil {
		t.Skipf("the EC2 scenario needs 127.0.0.1:80 for the fake IMDS: %v", err)
	}
	key := sshKey(t, "ec2@e2e")
	srv := &imds{token: "e2e-token-" + newUUID(), files: map[string]string{
		"/latest/meta-data/instance-id":               "i-0e2e2e2e2e2e2e2e2",
		"/latest/meta-data/local-hostname":            "ip-10-0-0-7.ec2.internal",
		"/latest/meta-data/public-keys/":              "0=e2e",
		"/latest/meta-data/public-keys/0/openssh-key": key,
		"/latest/meta-data/mac":                       "52:54:00:12:34:56",
		"/latest/user-data":                           "#cloud-config\ndisable_root: false\nwrite_files:\n  - path: /etc/e2e/ec2.txt\n    content: from imds\n",
	}}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	m.vm.Net = "user,net=169.254.0.0/16,host=169.254.169.254"
	m.vm.SMBIOS = []string{"type=1,manufacturer=Amazon EC2,product=m5.large,uuid=ec2e2e2e-1111-4222-8333-444455556666"}
	res := m.boot()
	wantOK(t, res, "ssh: authorize keys /root/.ssh/authorized_keys", "files: write /etc/e2e/ec2.txt")
	in, _ := m.inspect()
	wantNewDefault(t, in, Plain)
	wantBootedOnce(t, in)
	if got := in.read(t, "/etc/e2e/ec2.txt"); got != "from imds" {
		t.Errorf("/etc/e2e/ec2.txt = %q", got)
	}
	wantContains(t, "recorded instance-id", in.read(t, "/var/lib/provision/instance-id"), "i-0e2e2e2e2e2e2e2e2")
	wantContains(t, "/root/.ssh/authorized_keys", in.read(t, "/root/.ssh/authorized_keys"), key)
	wantReport(t, in, "done")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.tokenPuts == 0 {
		t.Error("no IMDSv2 token was requested")
	}
	if len(srv.unauthGets) > 0 {
		t.Errorf("GETs without the IMDSv2 token: %q", srv.unauthGets)
	}
}

// (g) A failing script on the MicroOS layout: the run rolls back (the root
// snapshot and what the script wrote in @/var), the old root boots
// (provision.on_failure=continue), no snapshot is left, and the report in
// the old root's /var says why.
func TestTierAFailingScript(t *testing.T) {
	m := newMachine(t, Snapper, nil)
	stick, err := CombustionStick(m.dir, Tree{
		"script": {Mode: 0o755, Data: []byte("#!/bin/sh\necho 'e2e-fail: about to fail'\n" +
			"touch /etc/e2e-must-not-survive\nmkdir -p /var/lib/e2e-fail\ntouch /var/lib/e2e-fail/must-not-survive\nexit 3\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{stick}
	m.vm.Cmdline = []string{"provision.on_failure=continue"}
	res := m.boot()
	wantContains(t, "console", res.Console, "e2e-fail: about to fail")
	wantContains(t, "console", res.Console, "FAILED")
	in, _ := m.inspect()
	if in.Default.Path != initialDefault(Snapper) {
		t.Errorf("default subvolume is %q after a failed run", in.Default.Path)
	}
	if extra := newSubvolumes(in, Snapper); len(extra) != 0 {
		t.Errorf("subvolumes left behind by a failed run: %q", extra)
	}
	wantBootedOnce(t, in)
	for _, p := range []string{"/etc/e2e-must-not-survive", "/var/lib/e2e-fail/must-not-survive"} {
		if _, err := os.Stat(in.path(p)); err == nil {
			t.Errorf("the failed script's write %s is in the booted root", p)
		}
	}
	// The report lives in the old root (its @/var): the only root there is.
	r := wantReport(t, in, "rolled back")
	if r.Error == nil {
		t.Fatalf("the report of the failed run has no error")
	}
	wantContains(t, "report error", r.Error.Message, "exited with status 3")
	wantContains(t, "report error origin", r.Error.Origin, "combustion")
}

// (h) The second boot of a provisioned disk, seed still attached: nothing
// runs again.
func TestTierASecondBoot(t *testing.T) {
	m := newMachine(t, Plain, nil)
	stick, err := CombustionStick(m.dir, Tree{
		"script": {Mode: 0o755, Data: []byte("#!/bin/sh\necho run >> /etc/e2e-runs\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{stick}
	wantOK(t, m.boot(), "scripts: run combustion script")
	in, done := m.inspect()
	first := in.Default
	wantNewDefault(t, in, Plain)
	nsub := len(in.Subvolumes)
	done()

	res := m.boot()
	wantContains(t, "second boot's console", res.Console, "nothing to do")
	if strings.Contains(res.Console, "transaction: applying") {
		t.Error("the second boot started a transaction")
	}
	in, _ = m.inspect()
	wantReport(t, in, "done") // the first boot's
	if in.Default != first {
		t.Errorf("second boot changed the default subvolume from %+v to %+v", first, in.Default)
	}
	if len(in.Subvolumes) != nsub {
		t.Errorf("second boot left subvolumes %q", in.subvolumePaths())
	}
	if got := in.read(t, "/etc/e2e-runs"); got != "run\n" {
		t.Errorf("/etc/e2e-runs = %q: the script ran again", got)
	}
	if n := in.Boots(); n != 2 {
		t.Errorf("the provisioned root booted %d times, want 2", n)
	}
}
