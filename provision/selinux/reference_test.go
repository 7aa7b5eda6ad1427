package selinux

import (
	"bufio"
	"bytes"

	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostPolicy is the Debian refpolicy that selinux-policy-default installs;
// the differential tests copy it into a target tree as "targeted", the way
// the faithful test roots do (microos-reality.md §7.2 step 9).
const hostPolicy = "/etc/selinux/default"

// referenceRoot builds a target root holding the host's policy as
// etc/selinux/targeted plus a local override and a local equivalence, or
// skips the test when the reference tools or policy are not installed.
func referenceRoot(t testing.TB) (root, fc string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(hostPolicy, "contexts/files/file_contexts")); err != nil {
		t.Skipf("no reference policy at %s (apt-get install selinux-policy-default): %v", hostPolicy, err)
	}
	for _, tool := range []string{"matchpathcon", "setfiles"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("reference tool %s not installed (apt-get install selinux-utils policycoreutils): %v", tool, err)
		}
	}
	root = t.TempDir()
	dst := filepath.Join(root, "etc/selinux/targeted")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", hostPolicy, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", hostPolicy, dst, err, out)
	}
	write(t, filepath.Join(root, "etc/selinux/config"), "# test target\nSELINUX=enforcing\nSELINUXTYPE=targeted\n")
	fc = filepath.Join(dst, "contexts/files/file_contexts")
	// What "semanage fcontext -a" and "semanage fcontext -a -e" would add.
	write(t, fc+".local", strings.Join([]string{
		"# local customisations",
		`/opt/provision(/.*)?	system_u:object_r:etc_t:s0`,
		`/etc/hostname	--	system_u:object_r:tmp_t:s0`,
		`/var/lib/provision/secret	--	<<none>>`,
		`/opt/app/bin/[^/]+	--	system_u:object_r:bin_t:s0`,
	}, "\n")+"\n")
	// Both lines match /srv/www/...: libselinux takes the last line that
	// matches, not the longest, so /srv/www/x is looked up as /opt/www/x.
	write(t, fc+".subs", "/srv/www /var/www\n/data/homes /home\n/srv /opt\n")
	return root, fc
}

func write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// refPaths is what the agent writes and its neighbourhood, by file type
// ('f' file, 'd' directory, 'l' symlink).
func refPaths() map[string]byte {
	p := map[string]byte{}
	files := []string{
		"/etc/shadow", "/etc/shadow-", "/etc/passwd", "/etc/passwd-", "/etc/group", "/etc/gshadow",
		"/etc/subuid", "/etc/subgid", "/etc/.pwd.lock", "/etc/hostname", "/etc/hosts", "/etc/machine-id",
		"/etc/locale.conf", "/etc/localtime", "/etc/vconsole.conf", "/etc/fstab", "/etc/resolv.conf",
		"/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-provision.conf", "/etc/ssh/ssh_host_ed25519_key",
		"/etc/ssh/ssh_host_ed25519_key.pub", "/etc/ssh/ssh_host_rsa_key",
		"/root/.ssh/authorized_keys", "/root/.bashrc", "/root/.profile", "/root/notes.txt",
		"/home/alice/.ssh/authorized_keys", "/home/alice/.bashrc", "/home/alice/bin/tool",
		"/home/alice/public_html/index.html", "/home/bob/.ssh/authorized_keys", "/home/bob/.gnupg/pubring.kbx",
		"/etc/systemd/system/foo.service", "/etc/systemd/system/foo.service.d/override.conf",
		"/etc/systemd/system/provision.timer", "/etc/systemd/network/10-eth0.network",
		"/etc/systemd/user/bar.service", "/etc/systemd/journald.conf", "/etc/systemd/logind.conf.d/x.conf",
		"/etc/NetworkManager/system-connections/x.nmconnection", "/etc/NetworkManager/NetworkManager.conf",
		"/etc/NetworkManager/conf.d/dns.conf", "/etc/sysconfig/network/ifcfg-eth0",
		"/etc/sudoers", "/etc/sudoers.d/90-provision", "/etc/sysctl.d/99-provision.conf",
		"/etc/modules-load.d/x.conf", "/etc/tmpfiles.d/x.conf", "/etc/udev/rules.d/70-x.rules",
		"/etc/profile.d/x.sh", "/etc/environment", "/etc/crontab", "/etc/cron.d/provision",
		"/etc/default/grub", "/etc/selinux/config", "/etc/selinux/.autorelabel", "/etc/selinux/.relabelled",
		"/etc/snapper/configs/root", "/etc/default/snapper", "/etc/sysconfig/snapper",
		"/etc/zypp/repos.d/x.repo", "/etc/apt/sources.list", "/etc/chrony.conf", "/etc/issue",
		"/etc/motd", "/etc/os-release", "/etc/login.defs", "/etc/pam.d/sshd", "/etc/security/limits.conf",
		"/etc/pki/trust/anchors/ca.pem", "/etc/ssl/certs/ca.pem", "/etc/containers/registries.conf",
		"/etc/resolv.conf.provision", "/etc/provision/config.yaml",
		"/var/lib/provision/instance-id", "/var/lib/provision/state.json", "/var/lib/provision/secret",
		"/var/log/provision/report.json", "/var/log/messages", "/var/log/wtmp", "/var/lib/YaST2/reconfig_system",
		"/var/lib/misc/transactional-update.state", "/var/lib/systemd/random-seed",
		"/var/spool/cron/crontabs/root", "/var/www/html/index.html", "/var/cache/zypp/x",
		"/var/lib/private/foo/db", "/var/log/private/x.log",
		"/usr/local/bin/x", "/usr/local/sbin/y", "/usr/local/lib/libz.so", "/usr/local/lib64/libq.so.1",
		"/usr/local/etc/x.conf", "/usr/local/share/x/data",
		"/usr/bin/bash", "/usr/sbin/sshd", "/usr/lib/systemd/systemd", "/usr/lib/systemd/system/sshd.service",
		"/usr/lib64/libc.so.6", "/usr/libexec/x", "/usr/share/doc/x", "/usr/etc/ssh/sshd_config",
		"/bin/sh", "/sbin/init", "/lib/systemd/systemd-udevd", "/lib64/ld-linux-x86-64.so.2",
		"/srv/x", "/srv/www/index.html", "/srv/provision/a/b.txt", "/srv/data/file",
		"/opt/x", "/opt/app/bin/run", "/opt/app/etc/app.conf", "/opt/app/lib/libapp.so",
		"/boot/grub2/grub.cfg", "/boot/writable/grubenv", "/boot/efi/EFI/BOOT/BOOTX64.EFI",
		"/.snapshots/2/info.xml", "/.autorelabel", "/data/homes/carol/.ssh/authorized_keys",
		"/tmp/x", "/var/tmp/x", "/run/provision/report.json", "/mnt/x", "/media/usb/x",
		"/weird path/with space", "/etc/with\u00e9accent.conf", "/etc/dir.d/a.b.c",
	}
	for _, f := range files {
		p[f] = 'f'
	}
	dirs := []string{
		"/etc", "/etc/ssh", "/etc/ssh/sshd_config.d", "/root", "/root/.ssh", "/home", "/home/alice",
		"/home/alice/.ssh", "/home/alice/.config", "/home/bob", "/home/bob/.gnupg",
		"/etc/systemd/system", "/etc/systemd/system/multi-user.target.wants", "/etc/systemd/system/foo.service.d",
		"/etc/NetworkManager/system-connections", "/etc/sudoers.d", "/etc/selinux", "/etc/provision",
		"/var/lib/provision", "/var/log/provision", "/var/lib", "/var/log", "/var", "/var/spool/cron/crontabs",
		"/usr/local", "/usr/local/bin", "/srv", "/srv/provision", "/srv/provision/a", "/srv/www", "/opt", "/opt/app",
		"/opt/app/bin", "/.snapshots", "/.snapshots/2", "/.snapshots/2/snapshot", "/boot/writable",
		"/run/provision", "/tmp", "/data", "/data/homes", "/data/homes/carol", "/home/lost+found",
	}
	for _, d := range dirs {
		p[d] = 'd'
	}
	links := []string{
		"/etc/systemd/system/multi-user.target.wants/foo.service",
		"/etc/systemd/system/default.target", "/etc/systemd/system/getty.target.wants/getty@tty1.service",
		"/etc/localtime.link", "/etc/resolv.conf.link", "/home/alice/link", "/usr/local/bin/x-link",
		"/etc/systemd/system/masked.service",
	}
	for _, l := range links {
		p[l] = 'l'
	}
	return p
}

var matchpathconType = map[byte]string{'f': "file", 'd': "dir", 'l': "lnk_file"}
var goMode = map[byte]fs.FileMode{'f': 0o644, 'd': fs.ModeDir | 0o755, 'l': fs.ModeSymlink | 0o777}

// TestReferenceMatchpathcon compares Lookup with libselinux's matchpathcon
// over the same policy files, including .local, .homedirs and .subs.
func TestReferenceMatchpathcon(t *testing.T) {
	root, fc := referenceRoot(t)
	pol, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if pol == nil || pol.Type != "targeted" || pol.Mode != "enforcing" {
		t.Fatalf("Load = %+v, want the targeted policy, enforcing", pol)
	}
	paths := refPaths()
	byType := map[byte][]string{}
	for p, ty := range paths {
		byType[ty] = append(byType[ty], p, "/"+p)
	}
	compared, mismatches := 0, 0
	for ty, list := range byType {
		sort.Strings(list)
		c, m := compareLookups(t, pol, fc, ty, list, len(list))
		compared, mismatches = compared+c, mismatches+m
	}
	t.Logf("compared %d lookups with matchpathcon: %d mismatches", compared, mismatches)
	// The comparison only means something if the reference honoured the
	// customisations too.
	custom := map[string]string{
		"/etc/hostname":             "system_u:object_r:tmp_t:s0",
		"/srv/www/index.html":       "system_u:object_r:usr_t:s0",
		"/var/lib/provision/secret": "<<none>>",
		"/srv/provision/a/b.txt":    "system_u:object_r:etc_t:s0", // .subs to /opt, then .local
		"/opt/app/bin/run":          "system_u:object_r:bin_t:s0",
	}
	var names []string
	for p := range custom {
		names = append(names, p)
	}
	got := matchpathcon(t, fc, "file", names)
	for p, w := range custom {
		if got[p] != w {
			t.Errorf("matchpathcon %s = %q, want %q: the reference ignored .local or .subs", p, got[p], w)
		}
	}
	if compared < 200 {
		t.Errorf("only %d comparisons", compared)
	}
}

// matchpathcon runs the reference tool for paths of one type and returns
// path -> context ("<<none>>" when it prints that).
// compareLookups checks pol.Lookup against matchpathcon for paths of file
// type ty (asked in batches that fit a command line) and returns how many
// were compared and how many differ; only the first report differences are
// reported one by one.
func compareLookups(t *testing.T, pol *Policy, fc string, ty byte, paths []string, report int) (compared, mismatches int) {
	t.Helper()
	for start := 0; start < len(paths); start += 2000 {
		batch := paths[start:min(start+2000, len(paths))]
		want := matchpathcon(t, fc, matchpathconType[ty], batch)
		for _, p := range batch {
			w, known := want[p]
			if !known {
				t.Errorf("matchpathcon printed nothing for %q", p)
				continue
			}
			got, ok := pol.Lookup(p, goMode[ty])
			if !ok {
				got = "<<none>>"
			}
			compared++
			if got != w {
				mismatches++
				if mismatches <= report {
					t.Errorf("Lookup(%q, %s) = %q, matchpathcon says %q", p, matchpathconType[ty], got, w)
				}
			}
		}
	}
	return compared, mismatches
}

func matchpathcon(t *testing.T, fc, typ string, paths []string) map[string]string {
	t.Helper()
	args := append([]string{"-f", fc, "-m", typ}, paths...)
	cmd := exec.Command("matchpathcon", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("matchpathcon %v: %v\n%s", args[:4], err, stderr.String())
	}
	res := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, '\t')
		if i < 0 {
			t.Fatalf("matchpathcon: unexpected line %q", line)
		}
		res[line[:i]] = line[i+1:]
	}
	// matchpathcon prints the path as given; a trailing slash survives.
	return res
}

// TestReferenceSetfiles labels a tree with Label and checks that setfiles,
// run over the same tree with the same policy files, finds nothing to
// change, and that the xattr bytes equal those setfiles itself writes.
func TestReferenceSetfiles(t *testing.T) {
	root, fc := referenceRoot(t)
	pol, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(t.TempDir(), "ours")
	theirs := filepath.Join(t.TempDir(), "theirs")
	paths := refPaths()
	for _, tree := range []string{ours, theirs} {
		buildTree(t, tree, paths)
	}
	var all []string
	if err := filepath.WalkDir(ours, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ours, p)
		if rel == "." {
			rel = ""
		}
		all = append(all, "/"+filepath.ToSlash(rel))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, target := range all {
		if err := pol.Label(filepath.Join(ours, target), target); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command("setfiles", "-n", "-v", "-r", ours, fc, ours).CombinedOutput()
	if err != nil {
		t.Fatalf("setfiles -n: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "Would relabel") || strings.Contains(line, "relabel") {
			t.Errorf("setfiles after Label: %s", line)
		}
	}
	if out, err := exec.Command("setfiles", "-F", "-r", theirs, fc, theirs).CombinedOutput(); err != nil {
		t.Fatalf("setfiles: %v\n%s", err, out)
	}
	labelled := 0
	for _, target := range all {
		a := getxattr(t, filepath.Join(ours, target))
		b := getxattr(t, filepath.Join(theirs, target))
		if !bytes.Equal(a, b) {
			t.Errorf("%s: Label wrote %q, setfiles wrote %q", target, a, b)
		}
		if a != nil {
			labelled++
		}
	}
	t.Logf("setfiles agreed on %d paths (%d labelled, the rest <<none>> or unmatched)", len(all), labelled)
}

func buildTree(t *testing.T, tree string, paths map[string]byte) {
	t.Helper()
	names := make([]string, 0, len(paths))
	for p := range paths {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		host := filepath.Join(tree, p)
		if err := os.MkdirAll(filepath.Dir(host), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch paths[p] {
		case 'f':
			err = os.WriteFile(host, []byte("x\n"), 0o644)
		case 'd':
			err = os.MkdirAll(host, 0o755)
		case 'l':
			err = os.Symlink("/nonexistent/target", host)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// A fifo and a socket-like special file exercise -p.
	if err := unix.Mkfifo(filepath.Join(tree, "/run/provision/fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func getxattr(t *testing.T, p string) []byte {
	t.Helper()
	buf := make([]byte, 512)
	n, err := unix.Lgetxattr(p, xattrName, buf)
	if err == unix.ENODATA {
		return nil
	}
	if err != nil {
		t.Fatalf("lgetxattr %s: %v", p, err)
	}
	return buf[:n]
}

// TestReferencePolicyDerived compares Lookup with matchpathcon on paths
// made from the policy's own entries (each literal entry, and a child and a
// sibling of each entry's literal prefix), which reaches far more of the
// policy than a hand-written list.
func TestReferencePolicyDerived(t *testing.T) {
	root, fc := referenceRoot(t)
	pol, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, s := range pol.db.specs {
		base := s.literal
		if !s.isLiteral {
			base = literalPrefix(s.regex)
		}
		if !strings.HasPrefix(base, "/") {
			continue
		}
		if len(base) > 1 {
			// matchpathcon prints a path without its trailing slash.
			base = strings.TrimSuffix(base, "/")
		}
		set[base] = true
		set[base+"/x"] = true
		set[base+"1.conf"] = true
	}
	var list []string
	for p := range set {
		list = append(list, p)
	}
	sort.Strings(list)
	compared, mismatches := 0, 0
	for _, ty := range []byte{'f', 'd', 'l'} {
		c, m := compareLookups(t, pol, fc, ty, list, 29-mismatches)
		compared, mismatches = compared+c, mismatches+m
	}
	t.Logf("compared %d policy-derived lookups with matchpathcon: %d mismatches", compared, mismatches)
}

// TestReferenceHomeRoots checks AddHomeRoots against what genhomedircon
// produced for /home in the shipped file_contexts.homedirs: instantiating
// the store's template for /home must give exactly those lines, a user
// under /home must add nothing, and a user under a new root must get the
// labels a user under /home gets (compared with matchpathcon).
func TestReferenceHomeRoots(t *testing.T) {
	root, fc := referenceRoot(t)
	const store = "/var/lib/selinux/default/active"
	tpl, err := os.ReadFile(store + "/homedir_template")
	if err != nil {
		t.Skipf("no policy store template at %s: %v", store, err)
	}
	dst := filepath.Join(root, "var/lib/selinux/targeted/active")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"homedir_template", "users_extra"} {
		data, err := os.ReadFile(filepath.Join(store, f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dst, f), string(data))
	}

	shipped, err := os.ReadFile(fc + ".homedirs")
	if err != nil {
		t.Fatal(err)
	}
	var wantHome []string
	for _, l := range strings.Split(string(shipped), "\n") {
		if strings.HasPrefix(l, "/home/") || strings.HasPrefix(l, "/home\t") {
			wantHome = append(wantHome, l)
		}
	}
	gotHome := templateLines(tpl, "/home", "unconfined_u", "unconfined")
	if strings.Join(gotHome, "\n") != strings.Join(wantHome, "\n") {
		t.Errorf("template for /home:\n%s\nshipped homedirs:\n%s", strings.Join(gotHome, "\n"), strings.Join(wantHome, "\n"))
	}

	pol, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n"+
		"alice:x:1000:1000::/home/alice:/bin/bash\n"+
		"svc:x:1005:1005::/var/lib/svc/home:/usr/sbin/nologin\n")
	// svc has a shell not in /etc/shells, so no home root.
	write(t, filepath.Join(root, "etc/shells"), "/bin/sh\n/bin/bash\n/sbin/nologin\n")
	write(t, filepath.Join(root, "etc/login.defs"), "UID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n")
	if added, err := pol.AddHomeRoots(root); err != nil || len(added) != 0 {
		t.Fatalf("AddHomeRoots with users under /home only = %d lines, %v; want none", len(added), err)
	}
	write(t, filepath.Join(root, "etc/passwd"), "alice:x:1000:1000::/home/alice:/bin/bash\n"+
		"carol:x:1001:1001::/data/homes/carol/:/bin/bash\n")
	added, err := pol.AddHomeRoots(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != len(wantHome) {
		t.Errorf("AddHomeRoots added %d lines; want %d (one per /home line)", len(added), len(wantHome))
	}
	rel := []string{"", "/.ssh", "/.ssh/authorized_keys", "/.bashrc", "/bin/x", "/public_html/index.html",
		"/.gnupg/S.scdaemon", "/.config/fontconfig/fonts.conf"}
	for _, ty := range []byte{'f', 'd'} {
		var homes []string
		for _, r := range rel {
			homes = append(homes, "/home/carol"+r)
		}
		homes = append(homes, "/home", "/home/lost+found")
		want := matchpathcon(t, fc, matchpathconType[ty], homes)
		for _, h := range homes {
			p := "/data/homes" + strings.TrimPrefix(h, "/home")
			got, ok := pol.Lookup(p, goMode[ty])
			if !ok {
				got = "<<none>>"
			}
			if got != want[h] {
				t.Errorf("Lookup(%q, %s) = %q; matchpathcon gives %q for %q", p, matchpathconType[ty], got, want[h], h)
			}
		}
	}
}
