package provision_test

// Root tier with the real package managers: zypper and dnf (Debian's
// packages of them, copied with their libraries into an openSUSE-shaped
// faithful disk) install from an rpm-md repository built here by rpmbuild
// and createrepo_c and served over HTTP, inside the real snapshot
// transaction. Nothing is faked: every exit status and output line checked
// below comes from the real programs.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/report"
	"github.com/provision-dev/provision/test/faithful"
	"github.com/provision-dev/provision/test/pkgtree"
	"github.com/provision-dev/provision/test/rpmrepo"
)

// testRPMs are the repository's packages: one that works (its %post
// leaves a mark in /var), and one per failure a manager must report.
func testRPMs(version string) []rpmrepo.Package {
	return []rpmrepo.Package{
		rpmrepo.BaseProvides,
		{Name: "hello-provision", Version: version,
			Files: map[string]string{"/usr/share/hello-provision/hello.txt": "hello " + version + " from rpm\n"},
			// The environment zypper runs with reaches the scriptlets.
			Post: "mkdir -p /var/lib/hello-provision && echo " + version + " > /var/lib/hello-provision/post-ran\n" +
				"{ [ -z \"$DISABLE_SNAPPER_ZYPP_PLUGIN\" ] || echo DISABLE_SNAPPER_ZYPP_PLUGIN=$DISABLE_SNAPPER_ZYPP_PLUGIN\n" +
				"[ -z \"$ZYPP_LOCK_TIMEOUT\" ] || echo ZYPP_LOCK_TIMEOUT=$ZYPP_LOCK_TIMEOUT; } > /var/lib/hello-provision/env"},
		{Name: "hello-badpost", Files: map[string]string{"/usr/share/hello-badpost/f": "x\n"},
			Post: "echo 'hello-badpost: post fails on purpose' >&2; exit 1"},
		{Name: "hello-badpre", Files: map[string]string{"/usr/share/hello-badpre/f": "x\n"},
			Pre: "echo 'hello-badpre: pre fails on purpose' >&2; exit 1"},
		{Name: "hello-conflict", Files: map[string]string{"/usr/share/hello-provision/hello.txt": "another owner\n"}},
	}
}

// managerCase is one package manager under test.
type managerCase struct {
	name string
	// debs are the host packages the target's tree is made of.
	debs []string
	// osRelease and extra files make the tree look like the distribution
	// the manager belongs to.
	osRelease string
	files     map[string]string
	// repo is the cloud-config that adds a repository at url.
	repo func(id, url string) string
	// reposKey is the head of repo's output, dropped when a second
	// repository follows the first in one document.
	reposKey string
	// status per failure case: the real exit status documented in
	// shared/research/packages.md (dnf exits 0 when a %post fails).
	notFound, badPost, badPre, conflict, badRepo int
	// env is what the install's %post finds of the manager's environment.
	env string
	// varFiles are what the manager keeps in the target's /var.
	varFiles []string
	// lines are output lines the report must keep, per case.
	notFoundLine, badPostLine, badPreLine, conflictLine, badRepoLine string
}

var managerCases = []managerCase{
	{
		name:      "zypper",
		debs:      []string{"zypper", "rpm", "bash", "coreutils", "dash"},
		osRelease: "NAME=\"openSUSE MicroOS\"\nID=\"opensuse-microos\"\nID_LIKE=\"suse opensuse opensuse-tumbleweed\"\nVERSION_ID=\"20261201\"\n",
		repo: func(id, url string) string {
			return fmt.Sprintf("zypper:\n  repos:\n    - id: %s\n      name: %s\n      baseurl: %s\n      gpgcheck: false\n", id, id, url)
		},
		reposKey: "zypper:\n  repos:\n",
		// transactional-update's settings: wait for the lock, no snapper
		// pre/post snapshots of the running root.
		env:      "DISABLE_SNAPPER_ZYPP_PLUGIN=1\nZYPP_LOCK_TIMEOUT=120\n",
		varFiles: []string{"log/zypp/history", "cache/zypp"},
		notFound: 104, badPost: 107, badPre: 8, conflict: 8, badRepo: 106,
		notFoundLine: "not found in package names", badPostLine: "scriptlet failed, exit status 1",
		badPreLine: "scriptlet failed, exit status 1", conflictLine: "file conflict", badRepoLine: "Repository 'broken-repo' is invalid.",
	},
	{
		name:      "dnf",
		debs:      []string{"dnf", "dash", "coreutils"},
		osRelease: "NAME=\"Fedora Linux\"\nID=fedora\nVERSION_ID=41\n",
		files:     map[string]string{"/etc/dnf/vars/releasever": "41\n"},
		repo: func(id, url string) string {
			return fmt.Sprintf("yum_repos:\n  %s:\n    name: %s\n    baseurl: %s\n    enabled: true\n    gpgcheck: false\n    metadata_expire: \"0\"\n", id, id, url)
		},
		reposKey: "yum_repos:\n",
		varFiles: []string{"log/dnf.log", "cache/dnf"},
		// Debian's dnf.conf sets skip_if_unavailable: dnf goes on without
		// the broken repository and exits 0.
		notFound: 1, badPost: 0, badPre: 1, conflict: 1, badRepo: 0,
		notFoundLine: "No match for argument: does-not-exist", badPostLine: "Error in POSTIN scriptlet",
		badPreLine: "Error in PREIN scriptlet", conflictLine: "conflicts between attempted installs of", badRepoLine: "Failed to download metadata for repo 'broken-repo'",
	},
}

func TestRealPackageManagers(t *testing.T) {
	requireRootTier(t, append([]string{"mkfs.btrfs", "btrfs", "sfdisk", "dpkg-query"}, rpmrepo.Tools...)...)
	bin := provisionBinary(t)
	for _, m := range managerCases {
		t.Run(m.name, func(t *testing.T) {
			if _, err := pkgtree.Closure(m.debs); err != nil {
				t.Skipf("needs the host's %s (apt-get install --no-install-recommends %s): %v", m.name, strings.Join(m.debs, " "), err)
			}
			repo := filepath.Join(t.TempDir(), "repo")
			if err := rpmrepo.Build(repo, testRPMs("1.0")...); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.FileServer(http.Dir(repo)))
			defer srv.Close()
			realManager(t, bin, m, repo, srv.URL)
		})
	}
}

// managerStage is an openSUSE- (or Fedora-) shaped first-boot tree with
// the manager, rpm and their libraries, and the rpm database where those
// distributions keep it: /usr/lib/sysimage/rpm, inside the snapshot, with
// /var/lib/rpm a link to it.
func managerStage(t *testing.T, m managerCase) string {
	t.Helper()
	stage := t.TempDir()
	if _, err := pkgtree.Build(stage, m.debs); err != nil {
		t.Fatal(err)
	}
	debianTree(t, stage, "")
	os.Remove(filepath.Join(stage, "etc/machine-id"))
	files := map[string]string{
		"/etc/os-release": m.osRelease,
		// Debian's rpm keeps its database in ~/.rpmdb; openSUSE's and
		// Fedora's rpm are built with this default.
		"/etc/rpm/macros": "%_dbpath /usr/lib/sysimage/rpm\n",
	}
	for k, v := range m.files {
		files[k] = v
	}
	for p, data := range files {
		os.MkdirAll(filepath.Join(stage, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(stage, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.RemoveAll(filepath.Join(stage, "var/lib/rpm"))
	os.MkdirAll(filepath.Join(stage, "usr/lib/sysimage/rpm"), 0o755)
	os.MkdirAll(filepath.Join(stage, "var/lib"), 0o755)
	if err := os.Symlink("../../usr/lib/sysimage/rpm", filepath.Join(stage, "var/lib/rpm")); err != nil {
		t.Fatal(err)
	}
	return stage
}

// managerRun is one `provision run` on the disk's current default.
type managerRun struct {
	out    string
	err    error
	report *report.Report
}

func realManager(t *testing.T, bin string, m managerCase, repo, url string) {
	d, a, sysroot, umount := faithfulSysroot(t, faithful.Options{Variant: faithful.A, Stage: managerStage(t, m), Size: 1200 << 20})
	_ = d
	mounted := true
	run := func(iid, cfg string) managerRun {
		t.Helper()
		if !mounted {
			var err error
			if umount, err = a.MountRoot(sysroot, false); err != nil {
				t.Fatal(err)
			}
			mounted = true
		}
		seed := t.TempDir()
		os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: "+iid+"\n"), 0o644)
		os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\n"+cfg), 0o644)
		rp := filepath.Join(t.TempDir(), "report.json")
		out, err := runProvision(bin, "run", "--root", sysroot, "--source", seed, "--report", rp)
		r := managerRun{out: string(out), err: err}
		if b, rerr := os.ReadFile(rp); rerr == nil {
			r.report = &report.Report{}
			if jerr := json.Unmarshal(b, r.report); jerr != nil {
				t.Fatalf("report: %v\n%s", jerr, b)
			}
		} else {
			t.Fatalf("no report: %v\n%s", rerr, out)
		}
		if uerr := umount(); uerr != nil {
			t.Fatal(uerr)
		}
		mounted = false
		return r
	}
	state := func() *faithful.State {
		t.Helper()
		s, err := a.Inspect()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	good := m.repo("test-repo", url)

	failures := []struct {
		name, cfg string
		status    int
		line      string
	}{
		{"package-not-found", good + "packages: [does-not-exist]\n", m.notFound, m.notFoundLine},
		{"post-fails", good + "packages: [hello-badpost]\n", m.badPost, m.badPostLine},
		{"pre-fails", good + "packages: [hello-badpre]\n", m.badPre, m.badPreLine},
		{"file-conflict", good + "packages: [hello-provision, hello-conflict]\n", m.conflict, m.conflictLine},
		{"repo-unreadable", good + strings.Replace(m.repo("broken-repo", url+"/no-such-repo/"), m.reposKey, "", 1) + "packages: [hello-provision]\n", m.badRepo, m.badRepoLine},
	}
	for i, f := range failures {
		r := run(fmt.Sprintf("iid-fail-%d", i), f.cfg)
		if r.err == nil {
			t.Errorf("%s: the run committed:\n%s", f.name, r.out)
			continue
		}
		s := state()
		if s.Default != "@/.snapshots/1/snapshot" {
			t.Fatalf("%s: default %s after a failed install\n%s", f.name, s.Default, r.out)
		}
		for _, sv := range s.Subvolumes {
			if strings.HasPrefix(sv, "@/.snapshots/2") {
				t.Errorf("%s: left behind: %s", f.name, sv)
			}
		}
		step := failedStep(r.report)
		if step == nil || step.Error == nil {
			t.Errorf("%s: no failed step in the report:\n%s", f.name, r.out)
			continue
		}
		want := fmt.Sprintf("with exit status %d", f.status)
		if f.status == 0 {
			want = m.name + " install failed ("
		}
		if !strings.Contains(step.Error.Message, want) {
			t.Errorf("%s: report error %q, want %q", f.name, step.Error.Message, want)
		}
		if !containsLine(step.Output, f.line) {
			t.Errorf("%s: the report keeps no output line with %q: %q", f.name, f.line, step.Output)
		}
		if !strings.Contains(r.out, "["+m.name+"] ") {
			t.Errorf("%s: the manager's output was not streamed to the console:\n%s", f.name, r.out)
		}
		t.Logf("%s: %s", f.name, step.Error.Message)
	}

	// Install, with the repository refreshed first.
	r := run("iid-install", good+"package_update: true\npackages: [hello-provision]\n")
	if r.err != nil {
		t.Fatalf("install: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(r.out, "gpgcheck off") {
		t.Errorf("the plan does not say the repository's signatures are not checked:\n%s", r.out)
	}
	s := state()
	if s.Default != "@/.snapshots/2/snapshot" {
		t.Fatalf("default %s after the install\n%s", s.Default, r.out)
	}
	checkInstalled(t, s, "@/.snapshots/2/snapshot", "1.0")
	if b, _ := os.ReadFile(filepath.Join(s.Var, "lib/hello-provision/env")); string(b) != m.env {
		t.Errorf("the manager's environment in %%post: %q, want %q", b, m.env)
	}
	for _, f := range m.varFiles {
		if _, err := os.Stat(filepath.Join(s.Var, f)); err != nil {
			t.Errorf("%s did not use the target's /var: %v", m.name, err)
		}
	}
	for _, p := range []string{"@/root/.rpmdb", "@/.snapshots/2/snapshot/root/.rpmdb"} {
		if _, err := os.Stat(filepath.Join(s.Top, p)); err == nil {
			t.Errorf("an rpm database in %s: not where the target keeps it", p)
		}
	}

	// Upgrade to a newer package from the same repository.
	if err := rpmrepo.Build(repo, testRPMs("1.1")[1]); err != nil {
		t.Fatal(err)
	}
	r = run("iid-upgrade", good+"package_update: true\npackage_upgrade: true\n")
	if r.err != nil {
		t.Fatalf("upgrade: %v\n%s", r.err, r.out)
	}
	s = state()
	if s.Default != "@/.snapshots/3/snapshot" {
		t.Fatalf("default %s after the upgrade\n%s", s.Default, r.out)
	}
	checkInstalled(t, s, "@/.snapshots/3/snapshot", "1.1")
	if _, err := s.ReadTop("@/.snapshots/2/snapshot/usr/share/hello-provision/hello.txt"); err != nil {
		t.Errorf("snapshot 2 lost its package: %v", err)
	}
}

// checkInstalled: the package's file is in the snapshot, its %post ran
// (in the target's /var), and the rpm database in the snapshot's
// /usr/lib/sysimage/rpm knows it at that version.
func checkInstalled(t *testing.T, s *faithful.State, snap, version string) {
	t.Helper()
	got, err := s.ReadTop(snap + "/usr/share/hello-provision/hello.txt")
	if err != nil || got != "hello "+version+" from rpm\n" {
		t.Errorf("%s: package file %q (%v)", snap, got, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Var, "lib/hello-provision/post-ran")); err != nil || string(b) != version+"\n" {
		t.Errorf("%%post of %s: %q (%v)", version, b, err)
	}
	db := filepath.Join(s.Top, snap, "usr/lib/sysimage/rpm")
	if _, err := os.Stat(filepath.Join(db, "rpmdb.sqlite")); err != nil {
		t.Errorf("no rpm database in %s: %v", db, err)
		return
	}
	// A copy: rpm wants to write lock files, and the snapshot is read-only.
	cp := t.TempDir()
	if out, err := exec.Command("cp", "-a", db+"/.", cp).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err := exec.Command("rpm", "--dbpath", cp, "-q", "--qf", "%{NAME}-%{VERSION}\n", "hello-provision").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello-provision-"+version {
		t.Errorf("rpm -q hello-provision in %s: %q (%v)", snap, out, err)
	}
}

func failedStep(r *report.Report) *report.Step {
	if r == nil {
		return nil
	}
	for _, m := range r.Modules {
		for _, s := range m.Steps {
			if s.Result == report.ResultFailed {
				return s
			}
		}
	}
	return nil
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}
