package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// (d) Packages on the first boot: a Debian package repository served over
// HTTP on the host's side of qemu's user networking (10.0.2.2 in the
// guest). provision brings the network up in the initrd because the config
// installs packages, adds the repository, and the root's own apt-get
// installs the package inside the new snapshot, with its postinst run.
func (b *tierB) packages(t *testing.T) {
	for _, tool := range []string{"dpkg-deb", "dpkg-scanpackages"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (apt-get install dpkg-dev)", tool)
		}
	}
	m := b.machine(t)
	repo := filepath.Join(m.dir, "repo")
	buildDebRepo(t, repo)
	// The guest reaches the host's loopback as 10.0.2.2 through slirp.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(repo))}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	userData := `#cloud-config
# The image's Debian mirror is not reachable from this network: only the
# local repository is used.
write_files:
  - path: /etc/apt/sources.list
    content: "# replaced on first boot: see sources.list.d\n"
apt:
  sources:
    local:
      source: "deb [trusted=yes] http://10.0.2.2:` + strconv.Itoa(port) + `/ ./"
packages:
  - hello-tierb
`
	iso, err := NoCloudISO(m.dir, userData, "instance-id: iid-tierb-packages\nlocal-hostname: tierb-packages\n", "")
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{iso}
	m.vm.Net = "user"
	res := m.boot()
	in := m.inspect()
	tierBCommon(t, in, res)
	if got := in.ReadFile("usr/share/hello-tierb/hello.txt"); got != "hello from the local repository\n" {
		t.Errorf("the package's file in the new default: %q", got)
	}
	wantVarFile(t, in, "/var/lib/hello-tierb/configured", "postinst ran\n")
	status, err := os.ReadFile(filepath.Join(in.Top, "@/var/lib/dpkg/status"))
	if err != nil || !strings.Contains(string(status), "Package: hello-tierb\nStatus: install ok installed\n") {
		t.Errorf("dpkg does not list hello-tierb as installed (%v)", err)
	}
	// apt-get's own lines, streamed to the console (and the journal)
	// while it ran in the initrd.
	for _, want := range []string{"[apt-get] Get:", "[apt-get] Setting up hello-tierb (1.0)"} {
		tierBContains(t, "console", res.Console, want)
	}
	rep, err := os.ReadFile(filepath.Join(in.Top, "@/var/log/provision/report.json"))
	if err != nil || !strings.Contains(string(rep), `"target": "hello-tierb"`) {
		t.Errorf("the report in /var/log/provision does not record the install (%v)", err)
	}
}

// buildDebRepo makes a flat repository (dpkg-scanpackages) with one
// package whose postinst leaves a mark in /var.
func buildDebRepo(t *testing.T, repo string) {
	t.Helper()
	pkg := filepath.Join(t.TempDir(), "hello-tierb")
	files := map[string]string{
		"DEBIAN/control": "Package: hello-tierb\nVersion: 1.0\nArchitecture: all\nMaintainer: provision tests <tests@provision.invalid>\n" +
			"Description: test package for the first-boot package install\n",
		"DEBIAN/postinst":                 "#!/bin/sh\nset -e\nmkdir -p /var/lib/hello-tierb\necho 'postinst ran' > /var/lib/hello-tierb/configured\n",
		"usr/share/hello-tierb/hello.txt": "hello from the local repository\n",
	}
	for p, data := range files {
		mode := os.FileMode(0o644)
		if p == "DEBIAN/postinst" {
			mode = 0o755
		}
		if err := os.MkdirAll(filepath.Join(pkg, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, p), []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", pkg, filepath.Join(repo, "hello-tierb_1.0_all.deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	cmd := exec.Command("dpkg-scanpackages", "--multiversion", ".", "/dev/null")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), out, 0o644); err != nil {
		t.Fatal(err)
	}
}
