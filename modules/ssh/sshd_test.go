package ssh

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// Trimmed copies of what the distributions ship (the lines that matter).
const (
	debianSSHD = "# Debian bookworm\n\nInclude /etc/ssh/sshd_config.d/*.conf\n\n" +
		"#PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM yes\n" +
		"Subsystem\tsftp\t/usr/lib/openssh/sftp-server\n"
	suseVendorSSHD = "# openSUSE /usr/etc/ssh/sshd_config\nInclude /etc/ssh/sshd_config.d/*.conf\n" +
		"Include /usr/etc/ssh/sshd_config.d/*.conf\n#PasswordAuthentication yes\nUsePAM yes\n"
	oldSSHD = "Port 22\nPasswordAuthentication yes\n#PasswordAuthentication no\nUsePAM yes\n" +
		"Match User backup\n\tPasswordAuthentication yes\n\tForceCommand /bin/false\n"
	matchOnlySSHD = "Port 22\nUsePAM yes\nMatch Address 10.0.0.0/8\n  PasswordAuthentication yes\n"
)

func TestPwauth(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		value  bool
		target string
		golden string // of the written file
		detail []string
		other  map[string]string // files that must stay as they were
	}{
		{"debian include", map[string]string{"etc/ssh/sshd_config": debianSSHD, "etc/ssh/sshd_config.d/": ""},
			false, DropIn, "sshd-dropin-no", []string{"drop-in"}, map[string]string{"etc/ssh/sshd_config": debianSSHD}},
		{"debian include, drop-in dir missing", map[string]string{"etc/ssh/sshd_config": debianSSHD},
			true, DropIn, "sshd-dropin-yes", []string{"drop-in"}, nil},
		{"suse vendor config", map[string]string{"usr/etc/ssh/sshd_config": suseVendorSSHD},
			false, DropIn, "sshd-dropin-no", []string{"drop-in"}, nil},
		{"no include: edit", map[string]string{"etc/ssh/sshd_config": oldSSHD},
			false, SSHDConfig, "sshd-edit-no", []string{"edit"}, nil},
		{"no include: insert before Match", map[string]string{"etc/ssh/sshd_config": matchOnlySSHD},
			false, SSHDConfig, "sshd-edit-match", []string{"edit"}, nil},
		{"vendor without include: copy", map[string]string{"usr/etc/ssh/sshd_config": matchOnlySSHD},
			false, SSHDConfig, "sshd-edit-match", []string{"copy of /usr/etc/ssh/sshd_config"}, map[string]string{"usr/etc/ssh/sshd_config": matchOnlySSHD}},
		{"no sshd at all", map[string]string{"etc/": ""},
			true, DropIn, "sshd-dropin-yes", []string{"no sshd configuration"}, nil},
		{"earlier drop-in wins", map[string]string{
			"etc/ssh/sshd_config":                        "PasswordAuthentication no\nInclude /etc/ssh/sshd_config.d/*.conf\n",
			"etc/ssh/sshd_config.d/10-hardening.conf":    "PasswordAuthentication no\n",
			"etc/ssh/sshd_config.d/60-cloudimg.conf":     "PasswordAuthentication no\n",
			"etc/ssh/sshd_config.d/40-match-only.conf":   "Match User x\nPasswordAuthentication no\n",
			"etc/ssh/sshd_config.d/45-same-value.conf":   "passwordauthentication=yes\n",
			"etc/ssh/sshd_config.d/20-not-conf.conf.bak": "PasswordAuthentication no\n",
		}, true, DropIn, "sshd-dropin-yes", []string{
			"warning: /etc/ssh/sshd_config:1 sets PasswordAuthentication no before the include",
			"warning: /etc/ssh/sshd_config.d/10-hardening.conf:1 sets PasswordAuthentication no",
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, tc.files)
			cfg := &config.Config{SSHPwauth: &config.BoolSetting{Value: tc.value, Origin: origin(20)}}
			steps, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != 1 || steps[0].Target != tc.target {
				t.Fatalf("steps %v, want one for %s", steps, tc.target)
			}
			for _, d := range tc.detail {
				if !strings.Contains(steps[0].Detail, d) {
					t.Errorf("detail %q lacks %q", steps[0].Detail, d)
				}
			}
			if strings.Contains(steps[0].Detail, "60-cloudimg") || strings.Contains(steps[0].Detail, "40-match-only") ||
				strings.Contains(steps[0].Detail, "45-same") || strings.Contains(steps[0].Detail, ".bak") {
				t.Errorf("detail warns about a drop-in that does not win: %q", steps[0].Detail)
			}
			rootfstest.Apply(t, root, steps)
			host := filepath.Join(root.Dir, tc.target)
			got, err := os.ReadFile(host)
			if err != nil {
				t.Fatal(err)
			}
			rootfstest.Golden(t, tc.golden, got)
			if tc.target == DropIn {
				if perm, _, _ := statOwner(t, host); perm != 0o600 {
					t.Errorf("drop-in mode %o", perm)
				}
			}
			for p, want := range tc.other {
				if b, _ := os.ReadFile(filepath.Join(root.Dir, p)); string(b) != want {
					t.Errorf("%s changed: %q", p, b)
				}
			}
			again, err := Plan(cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != 0 {
				t.Errorf("plan after apply not empty: %v", again)
			}
			checkWithSSHD(t, root.Dir, tc.target, tc.value, tc.name == "earlier drop-in wins")
		})
	}
}

// checkWithSSHD asks the real sshd (sshd -T) which PasswordAuthentication it
// ends up with, when an sshd binary is available (SSHD=path or on PATH; the
// Debian package unpacked with dpkg-deb -x works).
func checkWithSSHD(t *testing.T, rootDir, target string, want, overridden bool) {
	sshd := os.Getenv("SSHD")
	if sshd == "" {
		var err error
		if sshd, err = exec.LookPath("sshd"); err != nil {
			t.Log("sshd not available (set SSHD=/path/to/sshd): skipping the sshd -T check")
			return
		}
	}
	_, uerr := user.Lookup("sshd")
	if _, err := os.Stat("/run/sshd"); uerr != nil || err != nil {
		// sshd -T insists on its privilege separation user and directory.
		t.Log("no sshd user or /run/sshd on this host: skipping the sshd -T check")
		return
	}
	main := filepath.Join(rootDir, SSHDConfig)
	data, err := os.ReadFile(main)
	if err != nil {
		// Vendor-only layout: sshd would read /usr/etc; test that file.
		if data, err = os.ReadFile(filepath.Join(rootDir, VendorSSHDConfig)); err != nil {
			data = []byte("Include /etc/ssh/sshd_config.d/*.conf\n")
		}
	}
	// Point the absolute Include paths into the test root.
	text := strings.ReplaceAll(string(data), "Include /", "Include "+rootDir+"/")
	hostKey := filepath.Join(t.TempDir(), "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKey).CombinedOutput(); err != nil {
		t.Skipf("ssh-keygen: %v %s", err, out)
	}
	cfgFile := filepath.Join(t.TempDir(), "sshd_config")
	os.WriteFile(cfgFile, []byte(text), 0o600)
	out, err := exec.Command(sshd, "-T", "-f", cfgFile, "-h", hostKey).CombinedOutput()
	if err != nil {
		t.Fatalf("sshd -T rejects the result: %v\n%s", err, out)
	}
	wantLine := "passwordauthentication " + yesNo(want)
	if overridden {
		wantLine = "passwordauthentication no"
	}
	if !strings.Contains(string(out), "\n"+wantLine+"\n") {
		t.Errorf("sshd -T does not report %q", wantLine)
	}
}

func TestEditSSHDConfig(t *testing.T) {
	tests := []struct {
		in, value, want string
		changed         bool
	}{
		{"PasswordAuthentication yes\n", "yes", "PasswordAuthentication yes\n", false},
		{"passwordauthentication=no\n", "yes", "PasswordAuthentication yes\n", true},
		{"  PasswordAuthentication  no  # c\n", "no", "  PasswordAuthentication  no  # c\n", false},
		{"Port 22", "no", "Port 22\nPasswordAuthentication no\n", true},
		{"", "no", "PasswordAuthentication no\n", true},
		{"#PasswordAuthentication yes\n", "no", "#PasswordAuthentication yes\nPasswordAuthentication no\n", true},
		{"Match all\nPasswordAuthentication yes\n", "no", "PasswordAuthentication no\nMatch all\nPasswordAuthentication yes\n", true},
	}
	for _, tc := range tests {
		got, changed := editSSHDConfig([]byte(tc.in), tc.value)
		if string(got) != tc.want || changed != tc.changed {
			t.Errorf("editSSHDConfig(%q, %s) = %q, %v; want %q, %v", tc.in, tc.value, got, changed, tc.want, tc.changed)
		}
	}
}
