package cloudinitdiff

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// hostKey is one type's key pair as found in /etc/ssh.
type hostKey struct {
	priv, pub fileState
	pubKey    string // "type base64", the comment left out
}

// hostKeys reads every ssh_host_<type>_key and its .pub in tree, checking
// that each private key parses and matches its public key.
func hostKeys(t *testing.T, tree string) map[string]hostKey {
	t.Helper()
	out := map[string]hostKey{}
	files, err := filepath.Glob(filepath.Join(tree, "etc/ssh/ssh_host_*_key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		typ := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "ssh_host_"), "_key")
		rel := "/etc/ssh/" + filepath.Base(f)
		k := hostKey{priv: stat(t, tree, rel), pub: stat(t, tree, rel+".pub")}
		if typ == "dsa" {
			// x/crypto/ssh reads no DSA key in OpenSSH's format: the
			// public half is compared alone.
			k.pubKey = strings.Join(strings.Fields(k.pub.data)[:2], " ")
			out[typ] = k
			continue
		}
		signer, err := gossh.ParsePrivateKey([]byte(k.priv.data))
		if err != nil {
			t.Errorf("%s: %s: %v", tree, rel, err)
			continue
		}
		pub, _, _, _, err := gossh.ParseAuthorizedKey([]byte(k.pub.data))
		if err != nil {
			t.Errorf("%s: %s.pub: %v", tree, rel, err)
			continue
		}
		if string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
			t.Errorf("%s: %s.pub is not the private key's", tree, rel)
		}
		k.pubKey = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub)))
		out[typ] = k
	}
	return out
}

func keyTypes(m map[string]hostKey) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// freshKeys asserts that every key of keys is new: none is the image's.
func freshKeys(t *testing.T, who string, image, keys map[string]hostKey) {
	t.Helper()
	for typ, k := range keys {
		if old, ok := image[typ]; ok && old.pubKey == k.pubKey {
			t.Errorf("%s kept the image's %s host key", who, typ)
		}
	}
}

// sameModes asserts the key files of the types both have agree in mode
// and owner (their contents are new keys and differ).
func sameModes(t *testing.T, a, b map[string]hostKey) {
	t.Helper()
	for typ, ka := range a {
		kb, ok := b[typ]
		if !ok {
			continue
		}
		for _, f := range []struct {
			name   string
			fa, fb fileState
		}{{"private", ka.priv, kb.priv}, {"public", ka.pub, kb.pub}} {
			if f.fa.mode != f.fb.mode || f.fa.uid != f.fb.uid || f.fa.gid != f.fb.gid {
				t.Errorf("%s %s key: cloud-init %04o %d:%d, provision %04o %d:%d", typ, f.name, f.fa.mode, f.fa.uid, f.fa.gid, f.fb.mode, f.fb.uid, f.fb.gid)
			}
		}
	}
}

func TestHostKeys(t *testing.T) {
	s := need(t)
	image := hostKeys(t, s.base)
	if got := keyTypes(image); !slices.Equal(got, []string{"ecdsa", "ed25519", "rsa"}) {
		t.Fatalf("the image's host keys: %q", got)
	}

	// cc_ssh runs for every instance: with no key given, the image's keys
	// are deleted and fresh ones made. cloud-init 22.4.2's default types
	// include dsa, which bookworm's OpenSSH 9.2 still generates;
	// provision's are 23.1's rsa, ecdsa and ed25519
	// (provision/cloudinit/hostkeys.go).
	t.Run("defaults: fresh per instance", func(t *testing.T) {
		var insts []pair
		for i := 0; i < 2; i++ {
			insts = append(insts, s.apply(t, seed{userData: "{}\n"}, nil, "cc_ssh"))
		}
		for i, p := range insts {
			a, b := hostKeys(t, p.a), hostKeys(t, p.b)
			if got := keyTypes(b); !slices.Equal(got, []string{"ecdsa", "ed25519", "rsa"}) {
				t.Errorf("provision's key types %q", got)
			}
			if got := keyTypes(a); !slices.Equal(got, []string{"dsa", "ecdsa", "ed25519", "rsa"}) {
				t.Errorf("cloud-init 22.4.2's key types %q: expected its default list, dsa included", got)
			}
			freshKeys(t, "cloud-init", image, a)
			freshKeys(t, "provision", image, b)
			sameModes(t, a, b)
			if i == 1 {
				prev := hostKeys(t, insts[0].b)
				for typ, k := range b {
					if prev[typ].pubKey == k.pubKey {
						t.Errorf("two instances of the image got the same %s host key from provision", typ)
					}
				}
				prevA := hostKeys(t, insts[0].a)
				for typ, k := range a {
					if prevA[typ].pubKey == k.pubKey {
						t.Errorf("two instances got the same %s host key from cloud-init", typ)
					}
				}
			}
			if rsaBits(t, b["rsa"]) != rsaBits(t, a["rsa"]) {
				t.Errorf("rsa key size: cloud-init %d, provision %d", rsaBits(t, a["rsa"]), rsaBits(t, b["rsa"]))
			}
		}
	})

	t.Run("ssh_genkeytypes", func(t *testing.T) {
		p := s.apply(t, seed{userData: "ssh_genkeytypes: [ed25519, rsa]\n"}, nil, "cc_ssh")
		a, b := hostKeys(t, p.a), hostKeys(t, p.b)
		if ta, tb := keyTypes(a), keyTypes(b); !slices.Equal(ta, tb) || !slices.Equal(tb, []string{"ed25519", "rsa"}) {
			t.Errorf("key types: cloud-init %q, provision %q", ta, tb)
		}
		freshKeys(t, "cloud-init", image, a)
		freshKeys(t, "provision", image, b)
		sameModes(t, a, b)
	})

	t.Run("ssh_deletekeys false keeps the image's", func(t *testing.T) {
		p := s.apply(t, seed{userData: "ssh_deletekeys: false\nssh_genkeytypes: [rsa, ed25519]\n"}, nil, "cc_ssh")
		unchanged(t, "cloud-init", p.base, p.a, "/etc/ssh")
		unchanged(t, "provision", p.base, p.b, "/etc/ssh")
	})

	t.Run("ssh_deletekeys false makes the missing type", func(t *testing.T) {
		drop := func(t *testing.T, tree string) {
			for _, f := range []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub"} {
				if err := os.Remove(filepath.Join(tree, f)); err != nil {
					t.Fatal(err)
				}
			}
		}
		p := s.apply(t, seed{userData: "ssh_deletekeys: false\nssh_genkeytypes: [rsa, ed25519]\n"}, drop, "cc_ssh")
		a, b := hostKeys(t, p.a), hostKeys(t, p.b)
		if ta, tb := keyTypes(a), keyTypes(b); !slices.Equal(ta, tb) || !slices.Equal(tb, []string{"ecdsa", "ed25519", "rsa"}) {
			t.Errorf("key types: cloud-init %q, provision %q", ta, tb)
		}
		for _, typ := range []string{"rsa", "ecdsa"} {
			if a[typ].pubKey != image[typ].pubKey || b[typ].pubKey != image[typ].pubKey {
				t.Errorf("the image's %s key was not kept", typ)
			}
		}
		sameModes(t, a, b)
	})

	t.Run("ssh_keys", func(t *testing.T) {
		edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		_, caPriv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		edSSHPub, err := gossh.NewPublicKey(edPub)
		if err != nil {
			t.Fatal(err)
		}
		caSigner, err := gossh.NewSignerFromKey(caPriv)
		if err != nil {
			t.Fatal(err)
		}
		cert := &gossh.Certificate{Key: edSSHPub, CertType: gossh.HostCert, KeyId: "cidiff", ValidPrincipals: []string{"cidiff"}, ValidBefore: gossh.CertTimeInfinity}
		if err := cert.SignCert(rand.Reader, caSigner); err != nil {
			t.Fatal(err)
		}
		pemOf := func(k any) string {
			b, err := gossh.MarshalPrivateKey(k, "")
			if err != nil {
				t.Fatal(err)
			}
			return string(pem.EncodeToMemory(b))
		}
		ud := "ssh_keys:\n" +
			"  ed25519_private: |\n" + indent(pemOf(edPriv), 4) + "\n" +
			"  ed25519_public: " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(edSSHPub))) + " given@cidiff\n" +
			"  ed25519_certificate: " + strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + "\n" +
			"  rsa_private: |\n" + indent(pemOf(rsaPriv), 4) + "\n"
		p := s.apply(t, seed{userData: ud}, nil, "cc_ssh")
		same(t, p.a, p.b, "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
			"/etc/ssh/ssh_host_ed25519_key-cert.pub", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_rsa_key.pub")
		// Only the given types: nothing generated besides.
		if ta, tb := keyTypes(hostKeys(t, p.a)), keyTypes(hostKeys(t, p.b)); !slices.Equal(ta, tb) || !slices.Equal(tb, []string{"ed25519", "rsa"}) {
			t.Errorf("key types: cloud-init %q, provision %q", ta, tb)
		}
		// Debian's cloud-init 22.4.2 names the certificate in a drop-in
		// of its own when sshd_config includes sshd_config.d, as
		// provision does; only the name differs (it names the tool).
		const line = "HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub"
		for who, tree := range map[string]string{"cloud-init": p.a, "provision": p.b} {
			unchanged(t, who, p.base, tree, "/etc/ssh/sshd_config")
		}
		a := stat(t, p.a, "/etc/ssh/sshd_config.d/50-cloud-init.conf")
		b := stat(t, p.b, "/etc/ssh/sshd_config.d/50-provision-hostcertificate.conf")
		if !strings.Contains(a.data, line+"\n") || !strings.Contains(b.data, line+"\n") || a.mode != b.mode || a.uid != b.uid || a.gid != b.gid {
			t.Errorf("HostCertificate drop-ins: cloud-init %s, provision %s", a, b)
		}
	})
}

func rsaBits(t *testing.T, k hostKey) int {
	t.Helper()
	raw, err := gossh.ParseRawPrivateKey([]byte(k.priv.data))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := raw.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("not an rsa key: %T", raw)
	}
	return r.N.BitLen()
}
