package cloudinitdiff

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// newCA returns a self-signed CA certificate in PEM.
func newCA(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// trustPaths are what ca_certs changes on Debian: the certificates
// update-ca-certificates reads, its list of enabled ones, and what it
// builds from them.
var trustPaths = []string{"/usr/share/ca-certificates", "/etc/ca-certificates.conf", "/etc/ssl/certs"}

const debconfDB = "/var/cache/debconf/config.dat"

func TestCACerts(t *testing.T) {
	s := need(t)
	one, two := newCA(t, "cloudinitdiff one"), newCA(t, "cloudinitdiff two")
	list := func(key string, certs ...string) string {
		out := "  " + key + ":\n"
		for _, c := range certs {
			out += "    - |\n" + indent(c, 6) + "\n"
		}
		return out
	}
	cases := []struct {
		name  string
		ud    string
		check func(*testing.T, pair)
	}{
		{
			name: "trusted",
			ud:   "ca_certs:\n" + list("trusted", one, two),
			check: func(t *testing.T, p pair) {
				same(t, p.a, p.b, trustPaths...)
				if c := readFile(t, p.b, "/etc/ssl/certs/ca-certificates.crt"); !strings.Contains(c, strings.TrimSpace(strings.Split(two, "-----BEGIN CERTIFICATE-----\n")[1])[:40]) {
					t.Errorf("provision's bundle lacks the second certificate")
				}
			},
		},
		{
			name: "one certificate as a string",
			ud:   "ca_certs:\n  trusted: |\n" + indent(one, 4) + "\n",
			check: func(t *testing.T, p pair) {
				same(t, p.a, p.b, trustPaths...)
			},
		},
		{
			name: "remove_defaults and trusted",
			ud:   "ca_certs:\n  remove_defaults: true\n" + list("trusted", one),
			check: func(t *testing.T, p pair) {
				same(t, p.a, p.b, trustPaths...)
				debconfAnswer(t, p)
			},
		},
		{
			name: "remove_defaults alone",
			ud:   "ca_certs:\n  remove_defaults: true\n",
			check: func(t *testing.T, p pair) {
				same(t, p.a, p.b, trustPaths...)
				debconfAnswer(t, p)
			},
		},
		{
			name: "deprecated ca-certs",
			ud:   "ca-certs:\n  remove-defaults: false\n" + list("trusted", one),
			check: func(t *testing.T, p pair) {
				same(t, p.a, p.b, trustPaths...)
			},
		},
		{
			// cloud-init 22.4.2 takes ca_certs when both are given
			// (cfg.get("ca_certs", cfg.get("ca-certs")), logging "Ignoring
			// ca-certs"); provision/cloudinit/cacerts.go takes ca-certs.
			name: "both spellings",
			ud:   "ca_certs:\n" + list("trusted", one) + "ca-certs:\n" + list("trusted", two),
			check: func(t *testing.T, p pair) {
				const added = "/usr/share/ca-certificates/cloud-init-ca-certs.crt"
				if a := readFile(t, p.a, added); a != one {
					t.Fatalf("cloud-init did not take ca_certs: %q", a)
				}
				if b := readFile(t, p.b, added); b == two {
					t.Logf("known difference, reported: provision takes ca-certs when both spellings are given; cloud-init 22.4.2 takes ca_certs")
					return
				}
				same(t, p.a, p.b, trustPaths...)
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := s.apply(t, seed{userData: c.ud}, nil, "cc_ca_certs")
			c.check(t, p)
		})
	}
}

// debconfAnswer asserts that both answered debconf alike: on Debian,
// remove_defaults also answers "no" to ca-certificates' trust_new_crts
// question, so a later package upgrade does not trust new CAs again.
func debconfAnswer(t *testing.T, p pair) {
	t.Helper()
	stanza := func(db string) string {
		for _, s := range strings.Split(db, "\n\n") {
			if strings.HasPrefix(s, "Name: ca-certificates/trust_new_crts\n") {
				return s
			}
		}
		return ""
	}
	a, b := stanza(readFile(t, p.a, debconfDB)), stanza(readFile(t, p.b, debconfDB))
	if !strings.Contains(a, "\nValue: no") {
		t.Errorf("cloud-init's debconf answer:\n%s", a)
	}
	if a != b {
		t.Errorf("debconf's trust_new_crts: cloud-init\n%s\nprovision\n%s", a, b)
	}
	same(t, p.a, p.b, debconfDB)
}
