package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/provision-dev/provision/test/faithful"
)

// faithfulNeeds is tierBNeeds plus what package faithful uses.
func faithfulNeeds() string {
	if why := tierBNeeds(); why != "" {
		return why
	}
	for _, tool := range []string{"sfdisk", "losetup", "partx", "chattr", "mtype", "mdir", "mmd"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("tier B on faithful disks needs %s in PATH: %v", tool, err)
		}
	}
	return ""
}

// The faithful scenarios: on each of A, B and C, one disk is provisioned
// (NoCloud ISO + Combustion stick) and booted twice, and another gets a
// Combustion script that fails. They run two at a time (-parallel).
func (b *tierB) faithful(t *testing.T) {
	if why := faithfulNeeds(); why != "" {
		t.Skip(why)
	}
	for _, v := range []faithful.Variant{faithful.A, faithful.B, faithful.C} {
		t.Run(string(v)+"-twice", func(t *testing.T) {
			t.Parallel()
			b.faithfulTwice(t, v)
		})
		t.Run(string(v)+"-failing", func(t *testing.T) {
			t.Parallel()
			b.faithfulFailing(t, v)
		})
	}
	t.Run("A-selinux", func(t *testing.T) {
		t.Parallel()
		b.faithfulSELinux(t, faithful.A)
	})
}

type faithfulMachine struct {
	t     *testing.T
	b     *tierB
	dir   string
	disk  *faithful.Disk
	seeds []string
	// initrd is what A and B boot (C boots its ESP's).
	initrd string
	// cmdline are extra kernel command line words (A and B).
	cmdline []string
}

func (b *tierB) faithfulMachine(t *testing.T, v faithful.Variant) *faithfulMachine {
	return b.faithfulMachineSELinux(t, v, "")
}

// faithfulMachineSELinux builds the disk with /etc/selinux/config set to
// mode and, unless mode is "", the root labelled; the machine then boots
// with "security=selinux selinux=1" (Debian's kernel enables AppArmor only).
func (b *tierB) faithfulMachineSELinux(t *testing.T, v faithful.Variant, mode string) *faithfulMachine {
	dir := t.TempDir()
	start := time.Now()
	initrd := b.sys.Initrd
	if v != faithful.B {
		var err error
		if initrd, err = NestedEtcInitrd(dir, initrd); err != nil {
			t.Fatal(err)
		}
	}
	d, err := BuildFaithfulTierBSELinux(dir, v, b.sys, initrd, mode)
	if err != nil {
		t.Fatal(err)
	}
	b.timings.Add(t.Name()+" disk", time.Since(start))
	m := &faithfulMachine{t: t, b: b, dir: dir, disk: d, initrd: initrd}
	if mode != "" {
		m.cmdline = []string{"security=selinux", "selinux=1"}
	}
	// The disk as built: a first boot.
	st := m.inspect()
	if _, err := st.ReadEtc(1, "machine-id"); err == nil {
		t.Errorf("built disk: snapshot 1 has /etc/machine-id (want none: first boot)")
	}
	if _, err := os.Stat(filepath.Join(st.Var, "lib/YaST2/reconfig_system")); err != nil {
		t.Errorf("built disk: no /var/lib/YaST2/reconfig_system: %v", err)
	}
	m.close(st)
	return m
}

func (m *faithfulMachine) inspect() *faithful.State {
	m.t.Helper()
	st, err := faithful.Inspect(m.disk)
	if err != nil {
		m.t.Fatal(err)
	}
	return st
}

func (m *faithfulMachine) close(st *faithful.State) {
	m.t.Helper()
	if err := st.Close(); err != nil {
		m.t.Error(err)
	}
}

// vm is the machine as its boot loader would start it: A and B with
// root=UUID= only; C from the ESP's default loader entry.
func (m *faithfulMachine) vm() (*TierBVM, *LoaderEntry) {
	m.t.Helper()
	vm := &TierBVM{
		Kernel: m.b.sys.Kernel.Vmlinuz, Initrd: m.initrd,
		Disk:  &TierBDisk{Path: m.disk.Path, UUID: m.disk.UUID},
		Seeds: m.seeds, Timeout: tierBTimeout(), Cmdline: m.cmdline,
	}
	if m.disk.Variant != faithful.C {
		return vm, nil
	}
	esp := m.disk.ESPImage()
	e, err := PickLoaderEntry(esp)
	if err != nil {
		m.t.Fatal(err)
	}
	if vm.Kernel, vm.Initrd, err = ExtractLoaderEntry(esp, e, m.dir); err != nil {
		m.t.Fatal(err)
	}
	vm.Root = strings.Fields(e.Options)
	m.t.Logf("systemd-boot: loader.conf default %q -> entry %s: options %q", e.Default, e.Name, e.Options)
	return vm, e
}

// boot boots once and saves the console next to the disk; it does not
// judge the result.
func (m *faithfulMachine) boot(n int) *BootResult {
	m.t.Helper()
	vm, _ := m.vm()
	log, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("console-%d.log", n)))
	if err != nil {
		m.t.Fatal(err)
	}
	defer log.Close()
	res, err := vm.Boot(context.Background(), log)
	if res != nil {
		m.b.timings.Add(fmt.Sprintf("%s boot %d", m.t.Name(), n), res.Elapsed)
		m.t.Logf("boot %d took %s", n, res.Elapsed.Round(100*time.Millisecond))
		if m.t.Failed() || os.Getenv("PROVISION_E2E_CONSOLE") == "1" {
			m.t.Logf("console of boot %d:\n%s", n, res.Console)
		}
	}
	if err != nil {
		m.t.Fatal(err)
	}
	if res.TimedOut {
		m.t.Errorf("boot %d: the VM did not power off within %s", n, vm.Timeout)
	}
	return res
}

// consoleLine is the rest of the first console line starting with prefix.
func consoleLine(console, prefix string) string {
	for _, l := range strings.Split(console, "\n") {
		l = strings.TrimRight(l, "\r")
		if i := strings.Index(l, prefix); i >= 0 {
			return strings.TrimSpace(l[i+len(prefix):])
		}
	}
	return ""
}

const faithfulUserData = `#cloud-config
hostname: faithful-%s
users:
  - name: carol
    gecos: Carol Faithful
    shell: /bin/bash
    ssh_authorized_keys:
      - %s
write_files:
  - path: /etc/faithful/cloud.txt
    content: |
      hello from nocloud
    permissions: '0644'
  # The private half, for the guest's own ssh login test (e2e-report).
  - path: /root/e2e-ssh-key
    permissions: '0600'
    encoding: b64
    content: %s
`

func (m *faithfulMachine) seed(script string) string {
	m.t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		m.t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		m.t.Fatal(err)
	}
	privB64 := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(block))
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		m.t.Fatal(err)
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " carol@faithful"
	v := strings.ToLower(string(m.disk.Variant))
	iso, err := NoCloudISO(m.dir, fmt.Sprintf(faithfulUserData, v, key, privB64), "instance-id: iid-faithful-"+v+"\n", "")
	if err != nil {
		m.t.Fatal(err)
	}
	stick, err := CombustionStick(m.dir, Tree{"script": {Mode: 0o755, Data: []byte(script)}})
	if err != nil {
		m.t.Fatal(err)
	}
	m.seeds = []string{iso, stick}
	return key
}

const faithfulGoodScript = `#!/bin/sh
set -e
echo "faithful-combustion: script running"
echo combustion-etc > /etc/faithful-combustion.txt
mkdir -p /var/lib/faithful
echo combustion-var > /var/lib/faithful/combustion.txt
echo "faithful-combustion: done"
`

const faithfulBadScript = `#!/bin/sh
echo "faithful-combustion: failing on purpose"
echo partial > /etc/faithful-partial.txt
exit 1
`

const snap2 = "@/.snapshots/2/snapshot"

// faithfulJournal checks one boot of the journal: provision.service
// finished and nothing failed to start. It returns the boot's entries.
func faithfulJournal(t *testing.T, st *faithful.State, n int, wantProvision bool) []JournalEntry {
	t.Helper()
	es, out, err := ReadJournalBoot(filepath.Join(st.Var, "log/journal"), n)
	if err != nil {
		t.Errorf("boot %d: reading the journal: %v\n%s", n, err, out)
		return nil
	}
	bad := false
	if wantProvision && FirstIndex(es, "Finished provision.service") < 0 {
		t.Errorf("boot %d: journal has no \"Finished provision.service\"", n)
		bad = true
	}
	if FirstIndex(es, CombustionSkipped) < 0 {
		t.Errorf("boot %d: the stand-in combustion.service was not skipped by provision's drop-in (no %q in the journal)", n, CombustionSkipped)
		bad = true
	}
	for _, e := range es {
		if strings.Contains(e.Text, CombustionStandinRan) {
			t.Errorf("boot %d: Combustion's unit ran after provision handled the boot: %s", n, e.Text)
			bad = true
		}
		if strings.Contains(e.Text, "Failed to start") || strings.Contains(e.Text, "E2E-FAILED") {
			t.Errorf("boot %d: journal: %s", n, e.Text)
			bad = true
		}
	}
	if bad {
		t.Logf("journal of boot %d:\n%s", n, out)
	}
	return es
}

// faithfulProvisioned checks the disk after a good boot n (1 or 2).
func (m *faithfulMachine) faithfulProvisioned(st *faithful.State, n int, res *BootResult, key string) {
	t := m.t
	t.Helper()
	v := m.disk.Variant
	if st.Default != snap2 {
		t.Errorf("boot %d: default subvolume %q, want %q; subvolumes %v", n, st.Default, snap2, st.Subvolumes)
	}
	for _, sv := range st.Subvolumes {
		if strings.HasPrefix(sv, "@/.snapshots/3") {
			t.Errorf("boot %d: subvolume %q: provision ran again", n, sv)
		}
	}
	if got := consoleLine(res.Console, "E2E-ROOT "); got != snap2 {
		t.Errorf("boot %d: the booted root is %q, want %q", n, got, snap2)
	}
	if got, _ := os.ReadFile(filepath.Join(st.Var, "lib/e2e/boots")); strings.TrimSpace(string(got)) != fmt.Sprint(n) {
		t.Errorf("boot %d: /var/lib/e2e/boots = %q", n, got)
	}
	etc := func(p string) string {
		s, err := st.ReadEtc(2, p)
		if err != nil {
			t.Errorf("boot %d: snapshot 2's /etc/%s: %v", n, p, err)
		}
		return s
	}
	tierBContains(t, "snapshot 2's /etc/passwd", etc("passwd"), "carol:x:1000:1000:Carol Faithful:/home/carol:/bin/bash")
	if got := etc("faithful/cloud.txt"); got != "hello from nocloud\n" {
		t.Errorf("boot %d: /etc/faithful/cloud.txt = %q", n, got)
	}
	if got := etc("faithful-combustion.txt"); got != "combustion-etc\n" {
		t.Errorf("boot %d: /etc/faithful-combustion.txt = %q", n, got)
	}
	if got := strings.TrimSpace(etc("hostname")); got != "faithful-"+strings.ToLower(string(v)) {
		t.Errorf("boot %d: /etc/hostname = %q", n, got)
	}
	if got, err := os.ReadFile(filepath.Join(st.Var, "lib/faithful/combustion.txt")); err != nil || string(got) != "combustion-var\n" {
		t.Errorf("boot %d: /var/lib/faithful/combustion.txt = %q (%v)", n, got, err)
	}
	if keys, err := st.ReadTop("@/home/carol/.ssh/authorized_keys"); err != nil {
		t.Errorf("boot %d: carol's authorized_keys: %v", n, err)
	} else {
		tierBContains(t, "authorized_keys", keys, key)
	}
	if _, err := os.Stat(filepath.Join(st.Var, "lib/YaST2/reconfig_system")); err == nil {
		t.Errorf("boot %d: /var/lib/YaST2/reconfig_system is still there", n)
	}
	if id, err := st.ReadEtc(1, "machine-id"); err == nil {
		t.Errorf("boot %d: snapshot 1 has /etc/machine-id %q", n, strings.TrimSpace(id))
	}
	if id, err := st.ReadEtc(2, "machine-id"); err != nil || len(strings.TrimSpace(id)) != 32 {
		t.Logf("NOTE boot %d: snapshot 2's /etc/machine-id is %q (%v): systemd did not commit a machine-id", n, strings.TrimSpace(id), err)
	} else {
		t.Logf("boot %d: snapshot 2's /etc/machine-id = %s", n, strings.TrimSpace(id))
	}
	if v == faithful.C {
		m.faithfulESP(st, n)
	}
}

// faithfulESP checks C's ESP: an entry for snapshot 2 that loader.conf
// names as default, and snapshot 1's entry kept.
func (m *faithfulMachine) faithfulESP(st *faithful.State, n int) {
	t := m.t
	t.Helper()
	if _, ok := st.ESPFiles[m.disk.Entry]; !ok {
		t.Errorf("boot %d: snapshot 1's entry %s is gone from the ESP", n, m.disk.Entry)
	}
	var entries []string
	for p, text := range st.ESPFiles {
		if strings.HasPrefix(p, "/loader/entries/") && strings.Contains(loaderKeys(text)["options"], "rootflags=subvol="+snap2) {
			entries = append(entries, p)
		}
	}
	if len(entries) != 1 {
		t.Errorf("boot %d: want one ESP entry for snapshot 2, have %v; ESP files: %v", n, entries, sortedKeys(st.ESPFiles))
		return
	}
	def := loaderKeys(st.ESPFiles["/loader/loader.conf"])["default"]
	name := filepath.Base(entries[0])
	if ok, _ := filepath.Match(def, name); !ok && def != name && def+".conf" != name {
		t.Errorf("boot %d: loader.conf default %q does not name %s:\n%s", n, def, name, st.ESPFiles["/loader/loader.conf"])
	}
	t.Logf("boot %d: ESP entry %s, loader.conf default %q", n, entries[0], def)
}

func (b *tierB) faithfulTwice(t *testing.T, v faithful.Variant) {
	m := b.faithfulMachine(t, v)
	key := m.seed(faithfulGoodScript)

	res := m.boot(1)
	if !strings.Contains(res.Console, "E2E-BOOTED") {
		t.Errorf("boot 1: the root's systemd never reached multi-user.target (no E2E-BOOTED on the console)")
	}
	tierBContains(t, "boot 1 console (the script's own output)", res.Console, "faithful-combustion: script running")
	st := m.inspect()
	m.faithfulProvisioned(st, 1, res, key)
	faithfulJournal(t, st, 1, true)
	m.close(st)
	if t.Failed() {
		t.Logf("console of boot 1:\n%s", res.Console)
		return
	}

	res = m.boot(2)
	if !strings.Contains(res.Console, "E2E-BOOTED") {
		t.Errorf("boot 2: the root's systemd never reached multi-user.target (no E2E-BOOTED on the console)")
	}
	if strings.Contains(res.Console, "faithful-combustion: script running") {
		t.Errorf("boot 2: the script ran again")
	}
	st = m.inspect()
	defer m.close(st)
	m.faithfulProvisioned(st, 2, res, key)
	es := faithfulJournal(t, st, 2, false)
	cmdline := consoleLine(res.Console, "E2E-CMDLINE ")
	if i := FirstIndex(es, "Command line:"); i >= 0 {
		t.Logf("boot 2 journal: %s", es[i].Text)
	}
	t.Logf("boot 2 /proc/cmdline: %s", cmdline)
	if v == faithful.C && !strings.Contains(" "+cmdline+" ", " rootflags=subvol="+snap2+" ") {
		t.Errorf("boot 2 did not come from snapshot 2's entry: /proc/cmdline %q", cmdline)
	}
	if t.Failed() {
		t.Logf("console of boot 2:\n%s", res.Console)
	}
}

func (b *tierB) faithfulFailing(t *testing.T, v faithful.Variant) {
	m := b.faithfulMachine(t, v)
	m.seed(faithfulBadScript)
	res := m.boot(1)
	if strings.Contains(res.Console, "E2E-BOOTED") {
		t.Errorf("the failing script's boot reached multi-user.target (want the initrd to stop: rd.emergency=poweroff)")
	}
	tierBContains(t, "console", res.Console, "faithful-combustion: failing on purpose")
	tierBContains(t, "console", res.Console, "provision: FAILED")
	st := m.inspect()
	defer m.close(st)
	if st.Default != "@/.snapshots/1/snapshot" {
		t.Errorf("default subvolume %q, want @/.snapshots/1/snapshot", st.Default)
	}
	for _, sv := range st.Subvolumes {
		if strings.HasPrefix(sv, "@/.snapshots/2") {
			t.Errorf("the failed run left subvolume %q", sv)
		}
	}
	if _, err := os.Stat(filepath.Join(st.Top, "@/.snapshots/2")); err == nil {
		t.Errorf("the failed run left @/.snapshots/2")
	}
	if _, err := os.Stat(filepath.Join(st.Var, "lib/YaST2/reconfig_system")); err != nil {
		t.Errorf("/var/lib/YaST2/reconfig_system is gone after the failed run: %v", err)
	}
	if _, err := st.ReadEtc(1, "faithful-partial.txt"); err == nil {
		t.Errorf("snapshot 1's /etc has the failed script's file")
	}
	if _, err := st.ReadEtc(1, "machine-id"); err == nil {
		t.Errorf("snapshot 1 has /etc/machine-id after the failed run")
	}
	if v == faithful.C {
		for p := range st.ESPFiles {
			if strings.HasPrefix(p, "/loader/entries/") && p != m.disk.Entry {
				t.Errorf("the failed run left ESP entry %s", p)
			}
		}
	}
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
