package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/test/faithful"
)

// faithfulSELinuxMode is the mode of the A-selinux scenario: enforcing,
// as MicroOS ships, unless PROVISION_E2E_SELINUX_MODE says otherwise.
// Debian's refpolicy boots the provisioned root enforcing; its remaining
// denials (systemd-sysctl on credentials, udevd on /proc/sys/fs, agetty's
// checkpoint_restore, tmpfiles relabelling /root and mtab) are gaps of
// that policy on paths the run never writes.
func faithfulSELinuxMode() string {
	if m := os.Getenv("PROVISION_E2E_SELINUX_MODE"); m != "" {
		return m
	}
	return "enforcing"
}

// faithfulSELinux provisions a labelled A with SELinux active (Debian's
// refpolicy as "targeted", security=selinux selinux=1) and checks that
// every path the run wrote carries the label the policy gives it, and that
// no AVC denial names one of them.
func (b *tierB) faithfulSELinux(t *testing.T, v faithful.Variant) {
	mode := faithfulSELinuxMode()
	m := b.faithfulMachineSELinux(t, v, mode)
	if m.disk.SELinux != mode {
		t.Fatalf("faithful wrote SELinux mode %q, want %q", m.disk.SELinux, mode)
	}
	key := m.seed(faithfulGoodScript)
	res := m.boot(1)
	if !strings.Contains(res.Console, "E2E-BOOTED") {
		t.Errorf("the root's systemd never reached multi-user.target (no E2E-BOOTED on the console)")
	}
	if line := consoleLine(res.Console, "[ OK ] selinux: "); !strings.Contains(line, "path(s) labelled") {
		t.Errorf("provision printed no \"[ OK ] selinux: N path(s) labelled\" line (got %q)", line)
	} else {
		t.Logf("provision: [ OK ] selinux: %s", line)
	}
	// sshd, confined by the policy, reads the authorized_keys the run
	// wrote and labelled: the login works.
	if line := consoleLine(res.Console, "E2E-SSH-LOGIN "); !strings.HasPrefix(line, "carol") {
		t.Errorf("ssh login as carol with the key the run authorized failed (%q; %q)", line, consoleLine(res.Console, "E2E-SSH-FAILED"))
	} else {
		t.Logf("ssh login: %s", line)
	}
	want := map[string]string{"permissive": "Permissive", "enforcing": "Enforcing"}[mode]
	if got := consoleLine(res.Console, "E2E-SELINUX "); got != want {
		t.Errorf("getenforce in the guest: %q, want %q", got, want)
	}
	st := m.inspect()
	defer m.close(st)
	m.faithfulProvisioned(st, 1, res, key)
	es := faithfulJournal(t, st, 1, true)
	for _, s := range []string{"SELinux:  Initializing", "SELinux:  policy capability", "policy loaded"} {
		if i := FirstIndex(es, s); i >= 0 {
			t.Logf("journal: %s", es[i].Text)
		} else if s == "SELinux:  Initializing" {
			t.Errorf("journal: no %q: the kernel did not enable SELinux", s)
		}
	}

	etc, err := st.EtcDir(2)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := faithful.FileContexts(st.Snapshot(2))
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(st.Top, "@/home")
	ours := map[string]string{ // booted path -> host path
		// Snapshot 2 and its nested /etc are the run's: their root
		// inodes are / and /etc of the booted system.
		"/":                                st.Snapshot(2),
		"/etc":                             etc,
		"/.snapshots/2/info.xml":           filepath.Join(st.Top, "@/.snapshots/2/info.xml"),
		"/etc/passwd":                      filepath.Join(etc, "passwd"),
		"/etc/shadow":                      filepath.Join(etc, "shadow"),
		"/etc/group":                       filepath.Join(etc, "group"),
		"/etc/hostname":                    filepath.Join(etc, "hostname"),
		"/etc/faithful":                    filepath.Join(etc, "faithful"),
		"/etc/faithful/cloud.txt":          filepath.Join(etc, "faithful/cloud.txt"),
		"/etc/faithful-combustion.txt":     filepath.Join(etc, "faithful-combustion.txt"),
		"/home/carol":                      filepath.Join(home, "carol"),
		"/home/carol/.ssh":                 filepath.Join(home, "carol/.ssh"),
		"/home/carol/.ssh/authorized_keys": filepath.Join(home, "carol/.ssh/authorized_keys"),
		"/var/lib/faithful":                filepath.Join(st.Var, "lib/faithful"),
		"/var/lib/faithful/combustion.txt": filepath.Join(st.Var, "lib/faithful/combustion.txt"),
		"/var/lib/provision/instance-id":   filepath.Join(st.Var, "lib/provision/instance-id"),
	}
	var paths []string
	for p := range ours {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// An AVC line names a file by its base name and inode number; both
	// must match one of ours (inode numbers repeat across subvolumes, so
	// a match can still be another subvolume's file: logged as such).
	inodes := map[string]map[uint64]string{} // base name -> inode -> path
	for _, p := range paths {
		host := ours[p]
		if fi, err := os.Lstat(host); err == nil {
			n := filepath.Base(p)
			if p == "/" {
				n = filepath.Base(host) // the kernel names a subvolume root so
			}
			if inodes[n] == nil {
				inodes[n] = map[uint64]string{}
			}
			inodes[n][fi.Sys().(*syscall.Stat_t).Ino] = p
			t.Logf("inode %d: %s", fi.Sys().(*syscall.Stat_t).Ino, p)
		}
		w, err := faithful.WantLabel(fc, p, host)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		got, err := faithful.Label(host)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if got != w {
			t.Errorf("%s: label %q, want %q (matchpathcon -f %s)", p, got, w, fc)
		} else {
			t.Logf("label %s: %s", p, got)
		}
	}

	if fi, err := os.Lstat(filepath.Join(st.Top, "@/root/.ssh")); err == nil {
		t.Logf("inode %d: /root/.ssh (not the run's)", fi.Sys().(*syscall.Stat_t).Ino)
	}
	// Every AVC denial of the boot is logged; one naming a path of ours
	// fails the test.
	_, out, err := ReadJournalBoot(filepath.Join(st.Var, "log/journal"), 1)
	if err != nil {
		t.Errorf("reading the journal: %v", err)
	}
	var avcs []string
	for _, l := range strings.Split(out+"\n"+res.Console, "\n") {
		if !strings.Contains(l, "avc:") || !strings.Contains(l, "denied") {
			continue
		}
		avcs = append(avcs, l)
		if p, ok := avcOurs(l, inodes); ok {
			t.Errorf("AVC denial on %s, a path the run wrote (or another with its name and inode number): %s", p, l)
		}
	}
	t.Logf("%d AVC denial line(s) in the journal and on the console:\n%s", len(avcs), strings.Join(avcs, "\n"))

	// The upstream oracle, run in the guest by the report script.
	var relabel []string
	for _, l := range strings.Split(res.Console, "\n") {
		if _, r, ok := strings.Cut(strings.TrimRight(l, "\r"), "E2E-RESTORECON "); ok {
			relabel = append(relabel, r)
			for _, p := range paths {
				if strings.Contains(r, " "+p+" ") {
					t.Errorf("restorecon -n in the guest would relabel a path the run wrote: %s", r)
				}
			}
		}
	}
	t.Logf("restorecon -nvR in the guest: %d line(s):\n%s", len(relabel), strings.Join(relabel, "\n"))
	if t.Failed() {
		t.Logf("console:\n%s", res.Console)
	}
}

var avcNameIno = regexp.MustCompile(`(?:name|path)="([^"]*)".* ino=(\d+)`)

// avcOurs reports which of our paths an AVC line names by base name and
// inode number.
func avcOurs(line string, inodes map[string]map[uint64]string) (string, bool) {
	m := avcNameIno.FindStringSubmatch(line)
	if m == nil {
		return "", false
	}
	ino, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return "", false
	}
	p, ok := inodes[filepath.Base(m[1])][ino]
	return p, ok
}
