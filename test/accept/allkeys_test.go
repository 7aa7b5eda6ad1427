package accept

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provision-dev/provision/test/testbin"
)

// TestAllKeys applies a cloud-config using every key of SPEC §4 with the
// built binary to a copy of a Debian tree and checks the result against
// what cloud-init would leave on Debian.
func TestAllKeys(t *testing.T) {
	root := newTree(t)
	seed := "testdata/all-keys"
	if os.Geteuid() != 0 {
		// Scripts run in a chroot: without root the run must refuse them
		// (and change nothing); the rest is checked by a copy without them.
		seed = withoutScripts(t, seed)
	}
	report := filepath.Join(t.TempDir(), "report.json")
	r := provision(t, "run", "--root", root, "--source", seed, "--report", report)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	passwd, shadow := readDB(t, root, "passwd"), readDB(t, root, "shadow")
	group, gshadow := readDB(t, root, "group"), readDB(t, root, "gshadow")

	t.Run("users", func(t *testing.T) {
		// useradd fields: gecos, home, shell; user-private groups unless
		// no_user_group (then /etc/default/useradd's GROUP, 100) or
		// primary_group.
		for _, c := range []struct{ user, gecos, home, shell, group string }{
			{"debian", "Debian", "/home/debian", "/bin/bash", "debian"},
			{"carol", "", "/home/carol", "/bin/sh", "carol"},
			{"alice", "Alice Admin", "/home/alice", "/bin/bash", "alice"},
			{"bob", "", "/srv/bob", "/bin/sh", "users"},
			{"svc", "", "/home/svc", "/usr/sbin/nologin", "svc"},
			{"nohome", "", "/home/nohome", "/bin/sh", "nohome"},
		} {
			e, ok := passwd[c.user]
			if !ok {
				t.Errorf("user %s not created", c.user)
				continue
			}
			if e[4] != c.gecos || e[5] != c.home || e[6] != c.shell || e[3] != itoa(gid(t, root, c.group)) {
				t.Errorf("passwd %s = %q; want gecos %q home %q shell %q group %s", c.user, e, c.gecos, c.home, c.shell, c.group)
			}
		}
		if passwd["bob"][2] != "2001" {
			t.Errorf("bob uid %s, want 2001", passwd["bob"][2])
		}
		if u := uid(t, root, "svc"); u < 100 || u > 999 {
			t.Errorf("system user svc got uid %d, outside SYS_UID_MIN..MAX", u)
		}
		if _, ok := group["bob"]; ok {
			t.Error("no_user_group: a group bob was created")
		}
		// Homes: from skel, owned by the user, mode from UMASK 022; none
		// for no_create_home and system users (cloud-init passes -M).
		checkDir(t, root, "home/alice", 0o755, "alice", "alice")
		checkFile(t, root, "home/alice/.profile", 0o644, "alice", "alice", ptr(readTree(t, debianTree, "etc/skel/.profile")))
		checkDir(t, root, "srv/bob", 0o755, "bob", "users")
		for _, p := range []string{"home/nohome", "home/svc"} {
			if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
				t.Errorf("%s exists: no home was asked for", p)
			}
		}
		// Groups: created plainly when missing (cloud-init's groupadd),
		// members from the groups: dict form and from users' groups.
		for g, want := range map[string]string{
			"admins": "alice", "devops": "alice,debian", "missing-grp": "alice",
			"netdev": "debian", "sudo": "debian", "adm": "alice,debian",
		} {
			if got := group[g]; got == nil || !sameMembers(got[3], want) {
				t.Errorf("group %s = %q, want members %s", g, got, want)
			}
			if got := gshadow[g]; got == nil || !sameMembers(got[3], want) {
				t.Errorf("gshadow %s = %q, want members %s", g, got, want)
			}
		}
		// subuid/subgid for regular users only (useradd -r allocates none).
		for _, f := range []string{"subuid", "subgid"} {
			ids := readTree(t, root, "etc/"+f)
			for _, u := range []string{"alice", "bob", "carol", "debian", "nohome"} {
				if !strings.Contains(ids, "\n"+u+":") && !strings.HasPrefix(ids, u+":") {
					t.Errorf("/etc/%s has no range for %s", f, u)
				}
			}
			if strings.Contains(ids, "\nsvc:") {
				t.Errorf("/etc/%s has a range for the system user svc", f)
			}
		}
	})

	t.Run("passwords", func(t *testing.T) {
		const rootHash = "$6$rootsalt$ltSldfGfum1QeNUJ/nBdZOg1EzPhtUGiJ2ySgApQTUWWkgzDUBVOMoLxZCs/Rn04FIw8UG/eb5QLtBSayZGUi1"
		const aliceHash = "$6$alicesalt$T/X0Lt.rdTVtytCPKJ4qpATJ4NcmX0CLEs1tFO4TX95Zfl4uBjziflqvs/BVqZ87iAeSo6HKfLrkvGTM733ch1"
		// chpasswd type hash, expire: true → lastchg 0 (passwd --expire).
		if e := shadow["root"]; e[1] != rootHash || e[2] != "0" {
			t.Errorf("root shadow %q", e)
		}
		// hashed_passwd with lock_passwd false; expiredate and inactive.
		if e := shadow["alice"]; e[1] != aliceHash || e[6] != "10" || e[7] != "22280" {
			t.Errorf("alice shadow %q, want her hash, inactive 10, expire day 22280 (2031-01-01)", e)
		}
		// plain_text_passwd with the default lock_passwd: true → locked $6$.
		if e := shadow["bob"]; !strings.HasPrefix(e[1], "!$6$") || !cryptMatches(t, e[1][1:], "bob-secret") {
			t.Errorf("bob shadow %q: want a locked SHA-512 hash of bob-secret", e)
		}
		// passwd (pre-hashed) with lock_passwd false.
		if e := shadow["nohome"]; e[1] != rootHash {
			t.Errorf("nohome shadow %q", e)
		}
		// chpasswd text on a user created locked: chpasswd replaces the
		// field, so the lock is gone; expired.
		if e := shadow["carol"]; !strings.HasPrefix(e[1], "$6$") || !cryptMatches(t, e[1], "carol-secret") || e[2] != "0" {
			t.Errorf("carol shadow %q: want an unlocked hash of carol-secret, lastchg 0", e)
		}
		// RANDOM: some SHA-512 hash, expired.
		if e := shadow["debian"]; !strings.HasPrefix(e[1], "$6$") || e[2] != "0" {
			t.Errorf("debian shadow %q", e)
		}
		// A system user is created locked, like useradd -r.
		if e := shadow["svc"]; e[1] != "!" {
			t.Errorf("svc shadow %q", e)
		}
		checkFile(t, root, "etc/shadow", 0o640, "root", "shadow", nil)
		checkFile(t, root, "etc/gshadow", 0o640, "root", "shadow", nil)
		checkFile(t, root, "etc/passwd", 0o644, "root", "root", nil)
		// No secret in the report.
		rep := readTree(t, root, "var/log/provision/report.json") + readFileOr(report)
		for _, s := range []string{"bob-secret", "carol-secret", randomPassword(r.stderr)} {
			if s != "" && strings.Contains(rep, s) {
				t.Errorf("the report contains the secret %q", s)
			}
		}
		var parsed map[string]any
		if err := json.Unmarshal([]byte(readFileOr(report)), &parsed); err != nil {
			t.Errorf("report %s: %v", report, err)
		}
	})

	t.Run("sudo", func(t *testing.T) {
		// cloud-init's write_sudo_rules layout, in our own file name.
		want := "# Created by provision\n\n# User rules for alice\nalice ALL=(ALL) NOPASSWD:ALL\nalice ALL=(root) /usr/bin/apt\n\n# User rules for debian\ndebian ALL=(ALL) NOPASSWD:ALL\n"
		checkFile(t, root, "etc/sudoers.d/90-provision-users", 0o440, "root", "root", &want)
		if readTree(t, root, "etc/sudoers") != readTree(t, debianTree, "etc/sudoers") {
			t.Error("/etc/sudoers changed although it includes /etc/sudoers.d")
		}
		if _, err := exec.LookPath("visudo"); err == nil {
			out, err := exec.Command("visudo", "-c", "-f", filepath.Join(root, "etc/sudoers.d/90-provision-users")).CombinedOutput()
			if err != nil {
				t.Errorf("visudo -c: %v\n%s", err, out)
			}
		}
	})

	t.Run("ssh", func(t *testing.T) {
		ed, ec, rsa := keyLine(t, "ed.pub"), keyLine(t, "ec.pub"), keyLine(t, "rsa3072.pub")
		checkDir(t, root, "home/alice/.ssh", 0o700, "alice", "alice")
		checkFile(t, root, "home/alice/.ssh/authorized_keys", 0o600, "alice", "alice", ptr(ed+"\nno-agent-forwarding "+ec+"\n"))
		// Top-level keys go to the default user and, behind the
		// disable_root refusal, to root.
		checkFile(t, root, "home/debian/.ssh/authorized_keys", 0o600, "debian", "debian", ptr(rsa+"\n"))
		refusal := `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"debian\" rather than the user \"root\".';echo;sleep 10;exit 142" `
		checkDir(t, root, "root/.ssh", 0o700, "root", "root")
		checkFile(t, root, "root/.ssh/authorized_keys", 0o600, "root", "root", ptr(refusal+rsa+"\n"))
		// ssh_pwauth: a drop-in (cloud-init's 50-cloud-init.conf, 0600),
		// the main file untouched since it includes sshd_config.d.
		b := readTree(t, root, "etc/ssh/sshd_config.d/50-provision.conf")
		if !strings.Contains("\n"+b, "\nPasswordAuthentication yes\n") {
			t.Errorf("drop-in:\n%s", b)
		}
		checkFile(t, root, "etc/ssh/sshd_config.d/50-provision.conf", 0o600, "root", "root", nil)
		if readTree(t, root, "etc/ssh/sshd_config") != readTree(t, debianTree, "etc/ssh/sshd_config") {
			t.Error("sshd_config changed")
		}
	})

	t.Run("write_files", func(t *testing.T) {
		for p, want := range map[string]string{
			"etc/demo/plain.txt": "plain payload\n", "etc/demo/b64": "b64 payload\n",
			"etc/demo/base64": "base64 payload\n", "etc/demo/gz": "gz payload\n",
			"etc/demo/gzip": "gzip payload\n", "etc/demo/gz+b64": "gz+b64 payload\n",
			"etc/demo/gzip+base64": "gzip+base64 payload\n", "etc/demo/appended-new": "first\n",
		} {
			// cloud-init's defaults: 0644, root:root.
			checkFile(t, root, p, 0o644, "root", "root", ptr(want))
		}
		// Parents are made like cloud-init's ensure_dir: 0755 root:root.
		checkDir(t, root, "etc/demo", 0o755, "root", "root")
		checkDir(t, root, "home/alice/.config", 0o755, "root", "root")
		checkFile(t, root, "etc/demo/octal-int", 0o755, "root", "root", ptr("#!/bin/sh\n"))
		checkFile(t, root, "etc/demo/octal-o", 0o640, "root", "root", ptr("o\n"))
		// owner: of users and groups made by the same config, no defer.
		checkFile(t, root, "home/alice/.config/app.conf", 0o600, "alice", "admins", ptr("[app]\nuser = alice\n"))
		// owner without a group: chown by name with group -1, stays root.
		checkFile(t, root, "srv/bob/notes", 0o644, "bob", "root", ptr("notes\n"))
		checkFile(t, root, "etc/motd", 0o644, "root", "root", ptr(readTree(t, debianTree, "etc/motd")+"Provisioned.\n"))
		checkFile(t, root, "home/carol/deferred", 0o644, "carol", "carol", ptr("deferred\n"))
	})

	t.Run("system", func(t *testing.T) {
		checkFile(t, root, "etc/hostname", 0o644, "root", "root", ptr("node1\n"))
		// cloud-init's hosts.debian.tmpl, comments aside.
		var entries []string
		for _, l := range strings.Split(readTree(t, root, "etc/hosts"), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				entries = append(entries, strings.Join(strings.Fields(l), " "))
			}
		}
		want := "127.0.1.1 node1.example.com node1|127.0.0.1 localhost|::1 localhost ip6-localhost ip6-loopback|ff02::1 ip6-allnodes|ff02::2 ip6-allrouters"
		if got := strings.Join(entries, "|"); got != want {
			t.Errorf("/etc/hosts entries\n%s\nwant\n%s", got, want)
		}
		// Timezone: /etc/timezone (Debian) and /etc/localtime into the
		// tree's own zoneinfo.
		checkFile(t, root, "etc/timezone", 0o644, "root", "root", ptr("Europe/Berlin\n"))
		l, err := os.Readlink(filepath.Join(root, "etc/localtime"))
		if err != nil || (l != "/usr/share/zoneinfo/Europe/Berlin" && l != "../usr/share/zoneinfo/Europe/Berlin") {
			t.Errorf("/etc/localtime -> %q, %v", l, err)
		}
		// Locale: Debian's /etc/default/locale (update-locale keeps its
		// header), plus /etc/locale.conf (SPEC §5).
		checkFile(t, root, "etc/default/locale", 0o644, "root", "root", ptr("#  File generated by update-locale\nLANG=de_DE.UTF-8\n"))
		checkFile(t, root, "etc/locale.conf", 0o644, "root", "root", ptr("LANG=de_DE.UTF-8\n"))
		// Keyboard: Debian's /etc/default/keyboard as cloud-init's
		// set_keymap fills it, plus vconsole.conf (SPEC §5).
		kb := readTree(t, root, "etc/default/keyboard")
		for _, w := range []string{`XKBMODEL="pc105"`, `XKBLAYOUT="de"`, `XKBVARIANT="nodeadkeys"`, `XKBOPTIONS="compose:rwin"`, `BACKSPACE="guess"`} {
			if !strings.Contains(kb, "\n"+w+"\n") {
				t.Errorf("/etc/default/keyboard lacks %s:\n%s", w, kb)
			}
		}
		if vc := readTree(t, root, "etc/vconsole.conf"); !strings.Contains(vc, "KEYMAP=de\n") {
			t.Errorf("vconsole.conf:\n%s", vc)
		}
	})

	t.Run("scripts packages and the rest", func(t *testing.T) {
		if os.Geteuid() == 0 {
			// bootcmd gets INSTANCE_ID; runcmd list entries are quoted.
			checkFile(t, root, "var/tmp/bootcmd.out", 0o644, "root", "root", ptr("bootcmd iid-accept-1\n"))
			checkFile(t, root, "var/tmp/runcmd.out", 0o644, "root", "root", ptr("runcmd\nit's quoted\n"))
		} else {
			t.Log("not root: bootcmd and runcmd were left out (they need a chroot)")
		}
		if os.Geteuid() == 0 {
			// The target has apt-get: refresh first (package_update, and
			// cloud-init always refreshes before installing on Debian),
			// then upgrade, then one install of every package, versions
			// as name=version; non-interactive.
			log := readTree(t, root, "var/tmp/apt-get.log")
			// ntp's client joins the install (the tree has none).
			for _, w := range []string{"noninteractive apt-get", " update\n", " dist-upgrade\n", "install htop curl=7.88.1-10 systemd-timesyncd\n"} {
				if !strings.Contains(log, w) {
					t.Errorf("apt-get.log lacks %q:\n%s", w, log)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "etc/apt/sources.list.d/example.list")); err != nil {
				t.Errorf("apt source not written: %v\n%s", err, r.stderr)
			}
			// Repositories for another package manager are not written.
			for _, p := range []string{"etc/zypp/repos.d/extra.repo", "etc/yum.repos.d/epel-test.repo"} {
				if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
					t.Errorf("%s written for a target without that package manager", p)
				}
			}
		} else {
			t.Log("not root: packages were left out (they run in a chroot)")
		}
		// ntp: the tree has no client. With packages to install (root),
		// Debian's systemd-timesyncd joins them and is configured once
		// there, as cloud-init installs the client; without, a warning
		// names the package to add and nothing is written.
		if os.Geteuid() == 0 {
			checkFile(t, root, "etc/systemd/timesyncd.conf.d/cloud-init.conf", 0o644, "root", "root",
				ptr("# written by provision from cloud-config ntp\n[Time]\nNTP=ntp.example.com\n"))
			if l, err := os.Readlink(filepath.Join(root, "etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service")); err != nil || l != "/usr/lib/systemd/system/systemd-timesyncd.service" {
				t.Errorf("systemd-timesyncd not enabled: %q %v", l, err)
			}
		} else {
			if !strings.Contains(r.stderr, "add systemd-timesyncd to packages:") {
				t.Errorf("output lacks the ntp warning naming systemd-timesyncd:\n%s", r.stderr)
			}
			if _, err := os.Lstat(filepath.Join(root, "etc/systemd/timesyncd.conf.d")); err == nil {
				t.Error("ntp wrote a configuration for a client the tree lacks")
			}
		}
		if strings.Contains(r.stderr, "ntp: accepted but not applied") {
			t.Error("ntp is still called not applied")
		}
		// mounts and swap: cloud-init's fstab lines, marked
		// comment=cloudconfig, the mount point made; the swap file 0600
		// with its signature (the tree is not btrfs: no NOCOW to check).
		checkFile(t, root, "etc/fstab", 0o644, "root", "root", ptr("/dev/vdb\t/mnt/data\text4\tdefaults,nofail,comment=cloudconfig\t0\t2\n"+
			"/dev/sdc\t/mnt/scratch\tauto\tdefaults,nofail,comment=cloudconfig\t0\t2\n"+
			"/var/swap.img\tnone\tswap\tsw,comment=cloudconfig\t0\t0\n"))
		checkDir(t, root, "mnt/data", 0o755, "root", "root")
		checkFile(t, root, "var/swap.img", 0o600, "root", "root", nil)
		if b := readTree(t, root, "var/swap.img"); len(b) != 2<<20 || !strings.HasSuffix(b[:os.Getpagesize()], "SWAPSPACE2") {
			t.Errorf("swap file: %d bytes, no swap signature at the end of its first page", len(b))
		}
		if strings.Contains(r.stderr, "accepted but not applied") {
			t.Error("a key is still called not applied")
		}
		// growpart and resize_rootfs act on the disk after the commit: on a
		// tree that is no filesystem of its own they cannot, which is a
		// warning, not a failure; power_state never acts outside the
		// initrd.
		for _, w := range []string{
			"power_state: applies only at first boot in the initrd; skipped here",
			"warning: disk: grow the partition of / (after the commit; ",
			"is not a mount point",
			"(after the commit: the provisioned root stays)",
		} {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("output lacks %q:\n%s", w, r.stderr)
			}
		}
		if id := readTree(t, root, "var/lib/provision/instance-id"); id != "iid-accept-1\n" {
			t.Errorf("instance-id %q", id)
		}
	})

	t.Run("second run does nothing", func(t *testing.T) {
		before := fingerprint(t, root)
		r := provision(t, "run", "--root", root, "--source", seed, "--report", report)
		if r.code != 0 || !strings.Contains(r.stderr, "nothing to do") {
			t.Errorf("exit %d:\n%s", r.code, r.stderr)
		}
		if d := testbin.Diff(before, fingerprint(t, root)); len(d) > 0 {
			t.Errorf("the second run changed the tree:\n%s", strings.Join(d, "\n"))
		}
	})
}

// withoutScripts copies a seed without its bootcmd and runcmd keys.
func withoutScripts(t *testing.T, seed string) string {
	t.Helper()
	ud := readFileOr(filepath.Join(seed, "user-data"))
	var out []string
	skip := false
	for _, l := range strings.Split(ud, "\n") {
		if strings.HasPrefix(l, "bootcmd:") || strings.HasPrefix(l, "runcmd:") ||
			strings.HasPrefix(l, "packages:") || strings.HasPrefix(l, "package_") {
			skip = true
			continue
		}
		if skip && (strings.HasPrefix(l, "  ") || l == "") {
			continue
		}
		skip = false
		out = append(out, l)
	}
	return writeSeed(t, strings.Join(out, "\n"), readFileOr(filepath.Join(seed, "meta-data")))
}

func readFileOr(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

func sameMembers(field, want string) bool {
	got := map[string]bool{}
	for _, m := range strings.Split(field, ",") {
		got[m] = true
	}
	for _, m := range strings.Split(want, ",") {
		if !got[m] {
			return false
		}
	}
	return true
}

// keyLine is a public key of modules/ssh's test data, as one line.
func keyLine(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testbin.RepoRoot(), "modules/ssh/testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// cryptMatches checks a SHA-512-crypt hash with openssl, an implementation
// independent of ours.
func cryptMatches(t *testing.T, hash, plain string) bool {
	t.Helper()
	f := strings.Split(hash, "$")
	if len(f) != 4 || f[1] != "6" {
		return false
	}
	out, err := exec.Command("openssl", "passwd", "-6", "-salt", f[2], plain).Output()
	if err != nil {
		t.Logf("openssl passwd unavailable (%v): not checking the hash of %q", err, plain)
		return true
	}
	return strings.TrimSpace(string(out)) == hash
}

// randomPassword finds the RANDOM password the run printed for the console
// (cloud-init prints them so the admin can log in).
func randomPassword(out string) string {
	_, after, ok := strings.Cut(out, "Set the following 'random' passwords\n")
	if !ok {
		return ""
	}
	line, _, _ := strings.Cut(after, "\n")
	_, pw, _ := strings.Cut(line, ":")
	return pw
}
