package e2e

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// tierBOff lets a run skip tier B while keeping tier A (it costs a
// debootstrap once per cache and about a minute per boot).
const tierBOff = "PROVISION_E2E_TIERB"

func tierBNeeds() string {
	if os.Getenv(tierBGate) != "1" {
		return "VM tests (tier B) are off: set " + tierBGate + "=1 to debootstrap a Debian root, build its initramfs with dracut and our module, and boot it under qemu (needs root, network access to the Debian mirror once per cache, qemu-system-x86, debootstrap, btrfs-progs, dosfstools, mtools, cloud-image-utils, systemd's journalctl)"
	}
	if os.Getenv(tierBOff) == "0" {
		return tierBOff + "=0: tier B skipped"
	}
	if os.Geteuid() != 0 {
		return "tier B needs root (debootstrap, chroot, loop mounts)"
	}
	for _, tool := range []string{AMD64.QEMU, "debootstrap", "chroot", "tar", "mkfs.btrfs", "btrfs", "mkfs.vfat", "mcopy",
		"cloud-localds", "journalctl", "apt-get", "dpkg", "depmod", "mount", "findmnt"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("tier B needs %s in PATH: %v", tool, err)
		}
	}
	return ""
}

// tierB is what every tier B scenario shares, built once by TestTierB.
type tierB struct {
	sys     *TierBSystem
	timings *Timings
}

// TestTierB builds the Debian root and its dracut initramfs once, then boots
// each scenario on a fresh disk made from it.
func TestTierB(t *testing.T) {
	if why := tierBNeeds(); why != "" {
		t.Skip(why)
	}
	tm := &Timings{}
	defer func() { t.Logf("tier B timings: %s", tm) }()
	dir, err := os.MkdirTemp("", "provision-tierb-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	binary := os.Getenv("PROVISION_E2E_BINARY")
	if binary == "" {
		binary = filepath.Join(dir, "provision")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binary, "./cmd/provision")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building ./cmd/provision: %v\n%s", err, out)
		}
	}
	k, err := FetchKernel(AMD64, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tarball, err := DebootstrapRoot(k, tm)
	if err != nil {
		t.Fatal(err)
	}
	tm.Add("root tarball (cached or built)", time.Since(start))
	start = time.Now()
	sys, err := PrepareTierB(dir, tarball, binary, "../../initrd/dracut/50provision", k, tm)
	if err != nil {
		t.Fatal(err)
	}
	tm.Add("prepare root + dracut", time.Since(start))
	if fi, err := os.Stat(sys.Initrd); err == nil {
		t.Logf("initramfs %s: %d bytes", sys.Initrd, fi.Size())
	}
	b := &tierB{sys: sys, timings: tm}
	t.Run("combustion", b.combustion)
	t.Run("nocloud", b.nocloud)
	t.Run("faithful", b.faithful)
	t.Run("packages", b.packages)
	t.Run("after_commit", b.afterCommit)
}

// tierBMachine is one scenario's disk and VM.
type tierBMachine struct {
	t      *testing.T
	b      *tierB
	dir    string
	vm     TierBVM
	umount func()
}

func (b *tierB) machine(t *testing.T) *tierBMachine {
	dir := t.TempDir()
	start := time.Now()
	disk, err := BuildTierBDisk(dir, b.sys)
	if err != nil {
		t.Fatal(err)
	}
	b.timings.Add(t.Name()+" disk", time.Since(start))
	return &tierBMachine{t: t, b: b, dir: dir, vm: TierBVM{
		Kernel: b.sys.Kernel.Vmlinuz, Initrd: b.sys.Initrd, Disk: disk,
		Timeout: tierBTimeout(),
	}}
}

func tierBTimeout() time.Duration {
	if s := os.Getenv("PROVISION_E2E_TIERB_TIMEOUT"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			return d
		}
	}
	return 6 * time.Minute
}

// boot boots once, saves the console next to the disk and requires that the
// root's systemd got to multi-user.target and powered off.
func (m *tierBMachine) boot() *BootResult {
	m.t.Helper()
	logPath := filepath.Join(m.dir, fmt.Sprintf("console-%d.log", time.Now().UnixNano()))
	log, err := os.Create(logPath)
	if err != nil {
		m.t.Fatal(err)
	}
	defer log.Close()
	res, err := m.vm.Boot(context.Background(), log)
	if res != nil {
		m.b.timings.Add(m.t.Name()+" boot", res.Elapsed)
		m.t.Logf("boot took %s; console:\n%s", res.Elapsed.Round(100*time.Millisecond), res.Console)
	}
	if err != nil {
		m.t.Fatal(err)
	}
	if res.TimedOut {
		m.t.Errorf("the VM did not power off within %s", m.vm.Timeout)
	}
	if !strings.Contains(res.Console, "E2E-BOOTED") {
		m.t.Errorf("the root's systemd never reached multi-user.target (no E2E-BOOTED on the console)")
	}
	return res
}

// inspect mounts the disk's top level read-only until the test ends or
// done is called.
func (m *tierBMachine) inspect() *Inspection {
	m.t.Helper()
	in, umount, err := Inspect(m.vm.Disk.Path, m.dir)
	if err != nil {
		m.t.Fatal(err)
	}
	var once sync.Once
	m.umount = func() {
		once.Do(func() {
			if err := umount(); err != nil {
				m.t.Error(err)
			}
		})
	}
	m.t.Cleanup(m.umount)
	return in
}

// done unmounts the inspected disk before the next boot.
func (m *tierBMachine) done() {
	if m.umount != nil {
		m.umount()
	}
}

// tierBCommon asserts what every provisioned tier B boot must leave: a new
// snapper snapshot as default subvolume that the root's systemd booted,
// snapshot 1 untouched, and a journal showing the agent between
// sysroot.mount and switch-root.
func tierBCommon(t *testing.T, in *Inspection, res *BootResult) {
	t.Helper()
	if in.Default.Path == "@/.snapshots/1/snapshot" || !strings.HasPrefix(in.Default.Path, "@/.snapshots/") {
		t.Errorf("default subvolume is %q (id %d), want a new snapper snapshot; subvolumes: %v", in.Default.Path, in.Default.ID, in.Subvolumes)
	} else {
		num := strings.TrimSuffix(strings.TrimPrefix(in.Default.Path, "@/.snapshots/"), "/snapshot")
		info, err := os.ReadFile(filepath.Join(in.Top, "@/.snapshots", num, "info.xml"))
		if err != nil {
			t.Errorf("snapshot %s has no info.xml: %v", num, err)
		} else {
			tierBContains(t, "info.xml", string(info), "<num>"+num+"</num>")
		}
	}
	if n := in.Boots(); n != 1 {
		t.Errorf("the root's systemd reported %d boots from the default subvolume %q, want 1", n, in.Default.Path)
	}
	if _, err := os.Stat(filepath.Join(in.Top, "@/.snapshots/1/snapshot", markerFile)); err == nil {
		t.Errorf("the machine booted snapshot 1, not the new default")
	}
	if !strings.Contains(res.Console, "[ OK ]") {
		t.Errorf("console has no \"[ OK ]\" step line of the agent")
	}
	if id := strings.TrimSpace(in.ReadFile("etc/machine-id")); id == "" || id == "uninitialized" {
		t.Errorf("/etc/machine-id in the booted root is %q: systemd did not commit the first boot", id)
	}
	tierBJournal(t, filepath.Join(in.Top, "@/var/log/journal"))
}

// tierBJournal checks the order of the initrd's jobs in the journal the
// booted system flushed to @/var/log/journal.
func tierBJournal(t *testing.T, dir string) {
	t.Helper()
	es, out, err := ReadJournal(dir)
	if err != nil {
		t.Errorf("reading the journal: %v", err)
		return
	}
	find := func(what string, keys ...string) int {
		for _, k := range keys {
			if i := FirstIndex(es, k); i >= 0 {
				return i
			}
		}
		t.Errorf("journal has no %s (looked for %q)", what, keys)
		return -1
	}
	mounted := find("sysroot.mount", "Mounted sysroot.mount")
	started := find("start of provision.service", "Starting provision.service")
	finished := find("end of provision.service", "Finished provision.service")
	switched := find("switch root", "Starting initrd-switch-root.service", "Switching root")
	agent := find("agent step line", "[ OK ] transaction")
	if t.Failed() {
		t.Logf("journal:\n%s", out)
		return
	}
	at := func(i int) float64 { return es[i].Mono }
	order := []struct {
		name string
		i    int
	}{{"sysroot.mount", mounted}, {"provision start", started}, {"agent step", agent}, {"provision end", finished}, {"switch root", switched}}
	for j := 1; j < len(order); j++ {
		a, b := order[j-1], order[j]
		if at(a.i) > at(b.i) {
			t.Errorf("journal: %s at %.6f comes after %s at %.6f\n%s\n%s", a.name, at(a.i), b.name, at(b.i), es[a.i].Text, es[b.i].Text)
		}
	}
	if t.Failed() {
		t.Logf("journal:\n%s", out)
		return
	}
	var seen []string
	for _, o := range order {
		seen = append(seen, fmt.Sprintf("%s %.3f", o.name, at(o.i)))
	}
	t.Logf("journal order: %s", strings.Join(seen, " < "))
}

// wantVarFile asserts content written to /var (or /home) by the config is
// in the subvolume mounted there, and not hidden below the mount point in
// the snapshot.
func wantVarFile(t *testing.T, in *Inspection, p, want string) {
	t.Helper()
	sub := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)[0]
	got, err := os.ReadFile(filepath.Join(in.Top, "@", p))
	if err != nil {
		t.Errorf("%s not in the @/%s subvolume: %v", p, sub, err)
	} else if want != "" && string(got) != want {
		t.Errorf("@%s = %q, want %q", p, got, want)
	}
	if _, err := os.Lstat(filepath.Join(in.Root(), p)); err == nil {
		t.Errorf("%s was written into the snapshot below the /%s mount point (hidden at run time)", p, sub)
	}
}

// (a) A FAT stick labelled "combustion": the script adds a user and writes
// into /var and /home; a sibling file is copied from the stick.
func (b *tierB) combustion(t *testing.T) {
	m := b.machine(t)
	stick, err := CombustionStick(m.dir, Tree{
		"script": {Mode: 0o755, Data: []byte(`#!/bin/sh
set -e
echo "tierb-combustion: script running in $(pwd)"
useradd -m -s /bin/sh -c "Bob Tier B" bob
cp hello.txt /etc/tierb-hello.txt
mkdir -p /var/lib/tierb
echo combustion > /var/lib/tierb/ran
echo "note for bob" > /home/bob/note.txt
chown bob:bob /home/bob/note.txt
echo "tierb-combustion: done"
`)},
		"hello.txt": {Mode: 0o644, Data: []byte("hello from the stick\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{stick}
	res := m.boot()
	tierBContains(t, "console (the script's own output)", res.Console, "tierb-combustion: script running")
	in := m.inspect()
	tierBCommon(t, in, res)
	tierBContains(t, "/etc/passwd", in.ReadFile("etc/passwd"), "bob:x:1000:1000:Bob Tier B:/home/bob:/bin/sh")
	if got := in.ReadFile("etc/tierb-hello.txt"); got != "hello from the stick\n" {
		t.Errorf("/etc/tierb-hello.txt = %q", got)
	}
	wantVarFile(t, in, "/var/lib/tierb/ran", "combustion\n")
	wantVarFile(t, in, "/home/bob/note.txt", "note for bob\n")
	if old, _ := os.ReadFile(filepath.Join(in.Top, "@/.snapshots/1/snapshot/etc/passwd")); strings.Contains(string(old), "bob:") {
		t.Errorf("snapshot 1 was changed: its /etc/passwd has bob")
	}
	wantVarFile(t, in, "/var/log/provision/report.json", "")
	first := in.Default
	m.done()

	// A second boot with the stick still attached: systemd committed the
	// machine-id, so the agent must change nothing.
	res = m.boot()
	if strings.Contains(res.Console, "tierb-combustion: script running") {
		t.Errorf("second boot: the script ran again")
	}
	in = m.inspect()
	if in.Default != first {
		t.Errorf("second boot: default subvolume changed from %v to %v", first, in.Default)
	}
	if n := in.Boots(); n != 2 {
		t.Errorf("second boot: %d boots recorded in %q, want 2", n, in.Default.Path)
	}
	for _, s := range in.Subvolumes {
		if strings.HasPrefix(s.Path, "@/.snapshots/") && s.Path != first.Path && s.Path != "@/.snapshots/1/snapshot" {
			t.Errorf("second boot left a new subvolume %q", s.Path)
		}
	}
}

const tierBUserData = `#cloud-config
hostname: tierb-nocloud
users:
  - name: alice
    gecos: Alice Tier B
    shell: /bin/bash
    ssh_authorized_keys:
      - %s
write_files:
  - path: /etc/tierb/nocloud.txt
    content: |
      hello from nocloud
    permissions: '0640'
  - path: /var/lib/tierb/from-cloud.txt
    content: |
      in var
`

// (b) A NoCloud ISO made by cloud-localds: a user with an SSH key,
// write_files in /etc and /var/lib, a hostname.
func (b *tierB) nocloud(t *testing.T) {
	m := b.machine(t)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " alice@tierb"
	iso, err := NoCloudISO(m.dir, fmt.Sprintf(tierBUserData, key), "instance-id: iid-tierb-b\nlocal-hostname: tierb-meta\n", "")
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{iso}
	res := m.boot()
	in := m.inspect()
	tierBCommon(t, in, res)
	tierBContains(t, "/etc/passwd", in.ReadFile("etc/passwd"), "alice:x:1000:1000:Alice Tier B:/home/alice:/bin/bash")
	if got := strings.TrimSpace(in.ReadFile("etc/hostname")); got != "tierb-nocloud" {
		t.Errorf("/etc/hostname = %q", got)
	}
	if got := in.ReadFile("etc/tierb/nocloud.txt"); got != "hello from nocloud\n" {
		t.Errorf("/etc/tierb/nocloud.txt = %q", got)
	}
	wantVarFile(t, in, "/var/lib/tierb/from-cloud.txt", "in var\n")
	wantVarFile(t, in, "/home/alice/.ssh/authorized_keys", "")
	if b, err := os.ReadFile(filepath.Join(in.Top, "@/home/alice/.ssh/authorized_keys")); err == nil {
		tierBContains(t, "authorized_keys", string(b), key)
	}
	wantVarFile(t, in, "/var/lib/provision/instance-id", "")
	if b, err := os.ReadFile(filepath.Join(in.Top, "@/var/lib/provision/instance-id")); err == nil {
		tierBContains(t, "recorded instance-id", string(b), "iid-tierb-b")
	}
}

// tierBGate is tier A's switch too: PROVISION_E2E=1 runs every VM tier.
const tierBGate = "PROVISION_E2E"

func tierBContains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Errorf("%s: %q does not contain %q", what, got, want)
	}
}
