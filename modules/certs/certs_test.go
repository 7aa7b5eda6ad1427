package certs

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

const certA = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
const certB = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"

func origin(line int) config.Origin {
	return config.Origin{Source: "test", File: "user-data", Line: line, Column: 3}
}

func caCfg(remove bool) *config.Config {
	return &config.Config{CACerts: &config.CACerts{Origin: origin(2), RemoveDefaults: remove,
		Trusted: []config.CACert{{Origin: origin(4), PEM: certA}, {Origin: origin(5), PEM: certB}}}}
}

// fakeExec records the commands run in the target and their input.
type fakeExec struct {
	argv  [][]string
	stdin []string
}

func (f *fakeExec) Run(ctx context.Context, c modules.Command) (int, error) {
	f.argv = append(f.argv, c.Argv)
	in := ""
	if c.Stdin != nil {
		b, err := io.ReadAll(c.Stdin)
		if err != nil {
			return 0, err
		}
		in = string(b)
	}
	f.stdin = append(f.stdin, in)
	return 0, nil
}

func apply(t *testing.T, root *rootfs.Root, steps []modules.Step) *fakeExec {
	t.Helper()
	ex := &fakeExec{}
	if err := modules.ApplyAll(context.Background(), &modules.Env{Root: root, Exec: ex}, steps); err != nil {
		t.Fatal(err)
	}
	return ex
}

func read(t *testing.T, root *rootfs.Root, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root.Dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDebian(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/ca-certificates.conf":                   "mozilla/A.crt\n\nmozilla/B.crt\n",
		"usr/share/ca-certificates/mozilla/A.crt":    "a",
		"etc/ssl/certs/ca-certificates.crt":          "bundle",
		"usr/sbin/update-ca-certificates":            "#!/bin/sh\n",
		"usr/share/ca-certificates/mozilla/keep.crt": "k",
	})
	steps, err := Plan(caCfg(false), root)
	if err != nil {
		t.Fatal(err)
	}
	want := "certs: write CA certificate /usr/share/ca-certificates/cloud-init-ca-certs.crt (2 certificates, mode 0644) [test:user-data:4:3]\n" +
		"certs: enable CA certificate /etc/ca-certificates.conf (cloud-init-ca-certs.crt) [test:user-data:2:3]\n" +
		"certs: run update-ca-certificates (in the target (debian trust store), needs the chroot) [test:user-data:2:3]\n"
	if got := string(rootfstest.PlanText(steps)); got != want {
		t.Errorf("plan\n%s\nwant\n%s", got, want)
	}
	ex := apply(t, root, steps)
	if got := read(t, root, "usr/share/ca-certificates/cloud-init-ca-certs.crt"); got != certA+"\n"+certB {
		t.Errorf("certificate file %q", got)
	}
	if got := read(t, root, "etc/ca-certificates.conf"); got != "mozilla/A.crt\n\nmozilla/B.crt\ncloud-init-ca-certs.crt\n" {
		t.Errorf("ca-certificates.conf %q", got)
	}
	if len(ex.argv) != 1 || ex.argv[0][0] != "update-ca-certificates" {
		t.Errorf("ran %q", ex.argv)
	}
	// Applied again, the name is not listed twice.
	apply(t, root, steps)
	if got := read(t, root, "etc/ca-certificates.conf"); strings.Count(got, "cloud-init-ca-certs.crt") != 1 {
		t.Errorf("ca-certificates.conf %q", got)
	}
}

func TestDebianRemoveDefaults(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/ca-certificates.conf":                "mozilla/A.crt\n",
		"usr/share/ca-certificates/mozilla/A.crt": "a",
		"etc/ssl/certs/ca-certificates.crt":       "bundle",
		"etc/ssl/openssl.cnf":                     "kept",
	})
	steps, err := Plan(caCfg(true), root)
	if err != nil {
		t.Fatal(err)
	}
	plan := string(rootfstest.PlanText(steps))
	if !strings.HasPrefix(plan, "certs: remove default CA certificates /usr/share/ca-certificates") || !strings.Contains(plan, "the target has no update-ca-certificates") || strings.Contains(plan, ": run ") {
		t.Errorf("plan:\n%s", plan)
	}
	apply(t, root, steps)
	for _, gone := range []string{"/usr/share/ca-certificates/mozilla", "/etc/ssl/certs/ca-certificates.crt"} {
		if root.Exists(gone) {
			t.Errorf("%s is still there", gone)
		}
	}
	if !root.Exists("/etc/ssl/certs") || !root.Exists("/etc/ssl/openssl.cnf") {
		t.Error("removed more than the directories' contents")
	}
	if got := read(t, root, "etc/ca-certificates.conf"); got != "cloud-init-ca-certs.crt\n" {
		t.Errorf("ca-certificates.conf %q", got)
	}
}

// On Debian, remove_defaults also answers debconf as cloud-init does, so
// an upgrade of ca-certificates does not trust its new CAs again (found
// by test/cloudinitdiff); the answer goes before the update tool runs.
func TestDebianRemoveDefaultsDebconf(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/ca-certificates.conf":                "mozilla/A.crt\n",
		"usr/share/ca-certificates/mozilla/A.crt": "a",
		"usr/sbin/update-ca-certificates":         "#!/bin/sh\n",
		"usr/bin/debconf-set-selections":          "#!/bin/sh\n",
	})
	steps, err := Plan(caCfg(true), root)
	if err != nil {
		t.Fatal(err)
	}
	if plan := string(rootfstest.PlanText(steps)); !strings.Contains(plan, "certs: run debconf-set-selections (in the target: ca-certificates ca-certificates/trust_new_crts select no") {
		t.Errorf("plan:\n%s", plan)
	}
	ex := apply(t, root, steps)
	if len(ex.argv) != 2 || strings.Join(ex.argv[0], " ") != "debconf-set-selections -" || ex.argv[1][0] != "update-ca-certificates" ||
		ex.stdin[0] != "ca-certificates ca-certificates/trust_new_crts select no\n" {
		t.Errorf("commands %q, input %q", ex.argv, ex.stdin)
	}
	// Without remove_defaults debconf is left alone.
	steps, err = Plan(caCfg(false), root)
	if err != nil {
		t.Fatal(err)
	}
	if plan := string(rootfstest.PlanText(steps)); strings.Contains(plan, "debconf") {
		t.Errorf("plan without remove_defaults:\n%s", plan)
	}
}

func TestSUSE(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/pki/trust/anchors/":          "",
		"usr/sbin/update-ca-certificates": "#!/bin/sh\n",
	})
	steps, err := Plan(caCfg(false), root)
	if err != nil {
		t.Fatal(err)
	}
	want := "certs: write CA certificate /etc/pki/trust/anchors/cloud-init-ca-cert-1.crt (1 certificate, mode 0644) [test:user-data:4:3]\n" +
		"certs: write CA certificate /etc/pki/trust/anchors/cloud-init-ca-cert-2.crt (1 certificate, mode 0644) [test:user-data:5:3]\n" +
		"certs: run update-ca-certificates (in the target (suse trust store), needs the chroot) [test:user-data:2:3]\n"
	if got := string(rootfstest.PlanText(steps)); got != want {
		t.Errorf("plan\n%s\nwant\n%s", got, want)
	}
	apply(t, root, steps)
	if read(t, root, "etc/pki/trust/anchors/cloud-init-ca-cert-2.crt") != certB {
		t.Error("second certificate")
	}
	// A dry run has no executor: the step says so instead of pretending.
	err = steps[2].Apply(context.Background(), &modules.Env{Root: root})
	if !errors.Is(err, modules.ErrNoExecutor) {
		t.Errorf("without an executor: %v", err)
	}
}

func TestFedora(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/pki/ca-trust/extracted/": "",
		"usr/bin/update-ca-trust":     "#!/bin/sh\n",
	})
	steps, err := Plan(caCfg(false), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Target != "/usr/share/pki/ca-trust-source/anchors/cloud-init-ca-certs.crt" || steps[1].Target != "update-ca-trust" {
		t.Errorf("steps %v", steps)
	}
}

func TestNoRootIsMicroOS(t *testing.T) {
	steps, err := Plan(caCfg(false), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || !strings.HasPrefix(steps[0].Target, "/etc/pki/trust/anchors/") {
		t.Errorf("steps %v", steps)
	}
}
