package ssh

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
	gossh "golang.org/x/crypto/ssh"
)

// imageKeys is a target whose image ships host keys, as a cloned disk does.
func imageKeys(extra map[string]string) map[string]string {
	files := map[string]string{
		"etc/passwd":                         passwd,
		"etc/group":                          group,
		"etc/ssh/ssh_host_ed25519_key":       "old private\n",
		"etc/ssh/ssh_host_ed25519_key.pub":   "old public\n",
		"etc/ssh/ssh_host_rsa_key":           "old private\n",
		"etc/ssh/ssh_host_rsa_key-cert.pub":  "old cert\n",
		"etc/ssh/ssh_host_dsa_key.pub":       "old public\n",
		"etc/ssh/moduli":                     "kept\n",
		"etc/ssh/ssh_config":                 "kept\n",
		"etc/ssh/sshd_config":                "Include /etc/ssh/sshd_config.d/*.conf\n",
		"etc/ssh/sshd_config.d/10-site.conf": "kept\n",
		"usr/bin/ssh-keygen":                 "#!/bin/true\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	return files
}

func defaultHostKeys() *config.SSHHostKeys {
	return &config.SSHHostKeys{Origin: origin(1), Delete: true, GenTypes: []string{"rsa", "ecdsa", "ed25519"}, GenOrigin: origin(1)}
}

func readHost(t *testing.T, root *rootfs.Root, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root.Dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkGenerated parses back each generated pair, compares the public
// key with the private key's, and asks ssh-keygen when there is one.
func checkGenerated(t *testing.T, root *rootfs.Root, types map[string]string) map[string]string {
	t.Helper()
	fps := map[string]string{}
	for typ, wire := range types {
		keyPath := hostKeyPath(typ)
		priv := readHost(t, root, keyPath)
		if !strings.HasPrefix(string(priv), "-----BEGIN OPENSSH PRIVATE KEY-----\n") {
			t.Errorf("%s is not in OpenSSH's format:\n%s", keyPath, priv)
		}
		signer, err := gossh.ParsePrivateKey(priv)
		if err != nil {
			t.Fatalf("%s: %v", keyPath, err)
		}
		pub, comment, _, _, err := gossh.ParseAuthorizedKey(readHost(t, root, keyPath+".pub"))
		if err != nil {
			t.Fatalf("%s.pub: %v", keyPath, err)
		}
		if pub.Type() != wire || string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Errorf("%s.pub: %s key, not the private key's public half", keyPath, pub.Type())
		}
		if comment != "root@node1" {
			t.Errorf("%s.pub comment %q", keyPath, comment)
		}
		if info, _ := CheckKeyLine(strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))); typ == "rsa" && info.Bits != RSABits {
			t.Errorf("rsa key of %d bits, want %d (ssh-keygen's default)", info.Bits, RSABits)
		}
		if perm, uid, _ := statOwner(t, filepath.Join(root.Dir, keyPath)); perm != 0o600 || (os.Getuid() == 0 && uid != 0) {
			t.Errorf("%s: mode %o uid %d, want 0600 root", keyPath, perm, uid)
		}
		if perm, _, _ := statOwner(t, filepath.Join(root.Dir, keyPath+".pub")); perm != 0o644 {
			t.Errorf("%s.pub: mode %o, want 0644", keyPath, perm)
		}
		if kg, err := exec.LookPath("ssh-keygen"); err == nil {
			for _, f := range []string{keyPath, keyPath + ".pub"} {
				out, err := exec.Command(kg, "-l", "-f", filepath.Join(root.Dir, f)).CombinedOutput()
				if err != nil || !strings.Contains(string(out), gossh.FingerprintSHA256(pub)) {
					t.Errorf("ssh-keygen -l -f %s: %v\n%s", f, err, out)
				}
			}
		}
		fps[typ] = gossh.FingerprintSHA256(pub)
	}
	return fps
}

func TestHostKeysRegenerated(t *testing.T) {
	types := map[string]string{"rsa": "ssh-rsa", "ecdsa": "ecdsa-sha2-nistp256", "ed25519": "ssh-ed25519"}
	var runs []map[string]string
	for run := 0; run < 2; run++ {
		root := rootfstest.NewRoot(t, imageKeys(nil))
		cfg := &config.Config{SSHHostKeys: defaultHostKeys()}
		cfg.System.Hostname = config.Setting{Value: "node1"}
		steps, err := Plan(cfg, root)
		if err != nil {
			t.Fatal(err)
		}
		plan := string(rootfstest.PlanText(steps))
		for _, want := range []string{
			"ssh: delete host keys /etc/ssh/ssh_host_*key* (5 files: ssh_host_dsa_key.pub, ssh_host_ed25519_key, ssh_host_ed25519_key.pub, ssh_host_rsa_key, ssh_host_rsa_key-cert.pub) [test:user-data:1:3]",
			"ssh: generate host key /etc/ssh/ssh_host_rsa_key (rsa, new for this instance, mode 0600 root:root) [test:user-data:1:3]",
			"ssh: generate host key /etc/ssh/ssh_host_ed25519_key (ed25519,",
		} {
			if !strings.Contains(plan, want) {
				t.Errorf("plan lacks %q:\n%s", want, plan)
			}
		}
		// The first instance's keys are begun ahead, as a run does once
		// the plan stands; the second's are made when applied.
		for _, s := range steps {
			if s.Action != "generate host key" {
				continue
			}
			if s.Prefetch == nil {
				t.Errorf("%s: no prefetch", s)
			} else if run == 0 {
				s.Prefetch()
			}
		}
		rootfstest.Apply(t, root, steps)
		for _, gone := range []string{"ssh_host_dsa_key.pub", "ssh_host_rsa_key-cert.pub"} {
			if root.Exists("/etc/ssh/" + gone) {
				t.Errorf("the image's %s is still there", gone)
			}
		}
		for _, kept := range []string{"moduli", "ssh_config", "sshd_config", "sshd_config.d/10-site.conf"} {
			if !root.Exists("/etc/ssh/" + kept) {
				t.Errorf("%s was deleted", kept)
			}
		}
		runs = append(runs, checkGenerated(t, root, types))
		// A second application (a retried step) keeps the keys it made.
		before := readHost(t, root, hostKeyPath("ed25519"))
		rootfstest.Apply(t, root, steps[1:])
		if string(readHost(t, root, hostKeyPath("ed25519"))) != string(before) {
			t.Error("generating again replaced an existing key")
		}
	}
	for typ := range types {
		if runs[0][typ] == runs[1][typ] {
			t.Errorf("two instances of the same image share the %s host key %s", typ, runs[0][typ])
		}
	}
}

func TestHostKeysSSHKeysGroup(t *testing.T) {
	root := rootfstest.NewRoot(t, imageKeys(map[string]string{"etc/group": group + "ssh_keys:x:998:\n"}))
	cfg := &config.Config{SSHHostKeys: &config.SSHHostKeys{Origin: origin(1), Delete: true, GenTypes: []string{"ed25519"}}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := steps[len(steps)-1].Detail; !strings.Contains(got, "mode 0640 root:ssh_keys") {
		t.Errorf("detail %q: Fedora's sshd-keygen leaves keys 0640 root:ssh_keys", got)
	}
	rootfstest.Apply(t, root, steps)
	perm, _, gid := statOwner(t, filepath.Join(root.Dir, hostKeyPath("ed25519")))
	if perm != 0o640 || (os.Getuid() == 0 && gid != 998) {
		t.Errorf("mode %o gid %d, want 0640 group ssh_keys", perm, gid)
	}
}

func TestHostKeysKeptWithoutDelete(t *testing.T) {
	root := rootfstest.NewRoot(t, imageKeys(nil))
	cfg := &config.Config{SSHHostKeys: &config.SSHHostKeys{Origin: origin(1), GenTypes: []string{"rsa", "ed25519", "ecdsa"}}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	// rsa and ed25519 exist: only ecdsa is made, as cloud-init does.
	if len(steps) != 1 || steps[0].Target != hostKeyPath("ecdsa") {
		t.Fatalf("steps %v", steps)
	}
	rootfstest.Apply(t, root, steps)
	if string(readHost(t, root, hostKeyPath("ed25519"))) != "old private\n" {
		t.Error("an existing key was replaced")
	}
}

func TestHostKeysSupplied(t *testing.T) {
	gen := rootfstest.NewRoot(t, nil)
	key := modules.NewAhead(func() (crypto.Signer, error) { return newHostKey("ed25519") })
	if err := generateHostKey(gen, "ed25519", "x@y", key); err != nil {
		t.Fatal(err)
	}
	priv := string(readHost(t, gen, hostKeyPath("ed25519")))
	signer, err := gossh.ParsePrivateKey([]byte(priv))
	if err != nil {
		t.Fatal(err)
	}
	const cert = "ssh-ed25519-cert-v01@openssh.com AAAA...\n"
	root := rootfstest.NewRoot(t, imageKeys(nil))
	cfg := &config.Config{SSHHostKeys: &config.SSHHostKeys{Origin: origin(1), Delete: true, GenTypes: []string{"rsa"}, HasSupplied: true,
		Supplied: []config.HostKeyFile{
			{Origin: origin(2), Type: "ed25519", Part: "private", Data: priv},
			{Origin: origin(3), Type: "ed25519", Part: "certificate", Data: cert},
		}}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	plan := string(rootfstest.PlanText(steps))
	for _, want := range []string{
		"ssh: write host key /etc/ssh/ssh_host_ed25519_key (ed25519 private from ssh_keys, mode 0600) [test:user-data:2:3]",
		"ssh: write host key /etc/ssh/ssh_host_ed25519_key.pub (ed25519 public, derived from the private key, mode 0644) [test:user-data:2:3]",
		"ssh: write host key /etc/ssh/ssh_host_ed25519_key-cert.pub (ed25519 certificate from ssh_keys, mode 0600) [test:user-data:3:3]",
		"ssh: set HostCertificate /etc/ssh/sshd_config.d/50-provision-hostcertificate.conf (/etc/ssh/ssh_host_ed25519_key-cert.pub) [test:user-data:3:3]",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "generate") {
		t.Errorf("keys generated although ssh_keys gives them:\n%s", plan)
	}
	rootfstest.Apply(t, root, steps)
	if string(readHost(t, root, hostKeyPath("ed25519"))) != priv || string(readHost(t, root, hostKeyPath("ed25519")+"-cert.pub")) != cert {
		t.Error("supplied keys not written as given")
	}
	pub, comment, _, _, err := gossh.ParseAuthorizedKey(readHost(t, root, hostKeyPath("ed25519")+".pub"))
	if err != nil || string(pub.Marshal()) != string(signer.PublicKey().Marshal()) || comment != "root@localhost" {
		t.Errorf("derived public key: %v %q", err, comment)
	}
	// cloud-init 22.4.2 derives it with a shell redirect: 0644, as
	// test/cloudinitdiff found; the given parts stay 0600.
	if perm, _, _ := statOwner(t, filepath.Join(root.Dir, hostKeyPath("ed25519")+".pub")); perm != 0o644 {
		t.Errorf("derived public key: mode %o, want 0644", perm)
	}
	if perm, _, _ := statOwner(t, filepath.Join(root.Dir, hostKeyPath("ed25519")+"-cert.pub")); perm != 0o600 {
		t.Errorf("certificate: mode %o, want 0600", perm)
	}
	if root.Exists(hostKeyPath("rsa")) {
		t.Error("the image's rsa key was not deleted")
	}
	if got := string(readHost(t, root, HostCertDropIn)); !strings.Contains(got, "\nHostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub\n") {
		t.Errorf("drop-in:\n%s", got)
	}
}

func TestAddGlobalLines(t *testing.T) {
	in := "Port 22\nHostCertificate /a\nMatch User x\n  X11Forwarding no\n"
	out, changed := addGlobalLines([]byte(in), "HostCertificate", []string{"/a", "/b"})
	if want := "Port 22\nHostCertificate /a\nHostCertificate /b\nMatch User x\n  X11Forwarding no\n"; !changed || string(out) != want {
		t.Errorf("got %q", out)
	}
	if _, changed := addGlobalLines(out, "HostCertificate", []string{"/b"}); changed {
		t.Error("a line that is there was added again")
	}
	if out, _ := addGlobalLines([]byte("Port 22\n"), "HostCertificate", []string{"/c"}); string(out) != "Port 22\nHostCertificate /c\n" {
		t.Errorf("got %q", out)
	}
}

// A target without OpenSSH gets no keys: cloud-init's ssh-keygen would
// not be there either. The image's keys are deleted all the same.
func TestHostKeysNoOpenSSH(t *testing.T) {
	files := imageKeys(nil)
	delete(files, "usr/bin/ssh-keygen")
	root := rootfstest.NewRoot(t, files)
	steps, err := Plan(&config.Config{SSHHostKeys: defaultHostKeys()}, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Action != "delete host keys" {
		t.Errorf("steps %v", steps)
	}
}

func TestHostKeysNoRoot(t *testing.T) {
	steps, err := Plan(&config.Config{SSHHostKeys: defaultHostKeys()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 4 || steps[0].Action != "delete host keys" || !strings.Contains(steps[1].Detail, "as the target has the group") {
		t.Errorf("steps %v", steps)
	}
}
