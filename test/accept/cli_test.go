package accept

import (
	"regexp"
	"strings"
	"testing"

	"github.com/provision-dev/provision/test/testbin"
)

// TestValidate: exit 0 on a valid config, 2 with file:line:col on an
// invalid one; --strict turns an unknown-key warning into exit 2.
func TestValidate(t *testing.T) {
	good := writeSeed(t, "#cloud-config\nhostname: node1\nusers:\n  - name: alice\n    groups: [wheel]\nwrite_files:\n  - path: /etc/x\n    content: x\n", "instance-id: i-1\n")
	if r := provision(t, "validate", good); r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Errorf("good: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bad := writeSeed(t, "#cloud-config\nwrite_files:\n  - path: /etc/x\n    permissions: 'rw-'\n", "instance-id: i-1\n")
	r := provision(t, "validate", bad)
	if re := regexp.MustCompile(`dir:` + regexp.QuoteMeta(bad) + `:user-data:4:18: `); r.code != 2 || !re.MatchString(r.stderr) {
		t.Errorf("bad: exit %d, want 2 and %s:\n%s", r.code, re, r.stderr)
	}
	unknown := writeSeed(t, "#cloud-config\nhostname: node1\nfrobnicate: true\n", "instance-id: i-1\n")
	r = provision(t, "validate", unknown)
	if r.code != 0 || !strings.Contains(r.stderr, `user-data:3:1: unknown cloud-config key "frobnicate"`) {
		t.Errorf("unknown key: exit %d, want 0 and a warning at 3:1:\n%s", r.code, r.stderr)
	}
	r = provision(t, "validate", "--strict", unknown)
	if r.code != 2 || !strings.Contains(r.stderr, "frobnicate") {
		t.Errorf("--strict: exit %d, want 2:\n%s", r.code, r.stderr)
	}
}

// TestDryRunOnProvisionedTree: a dry run with --root on a tree the same
// config already provisioned (new instance-id) lists only steps that
// would really change something.
func TestDryRunOnProvisionedTree(t *testing.T) {
	root := newTree(t)
	seed := "testdata/all-keys"
	if r := provision(t, "run", "--root", root, "--source", seed, "--report", t.TempDir()+"/r.json"); r.code != 0 {
		t.Skipf("the first run failed (TestAllKeys reports why): exit %d", r.code)
	}
	again := writeSeed(t, readFileOr(seed+"/user-data"), "instance-id: iid-accept-2\n")
	before := fingerprint(t, root)
	r := provision(t, "--dry-run", "--source", again, "--root", root)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	// What may reappear, by design: appends, passwords that cannot be
	// compared (RANDOM), expiry, scripts, packages, what acts after the
	// commit on the machine's disk and power (decided at boot), warnings,
	// and what the
	// target is (its /etc model, boot handling), and the header (sources,
	// documents, instance-id, first-boot verdict).
	allowed := regexp.MustCompile(`^(# source |#   |# document |# instance-id: |# first boot: |# target: |# scripts: |disk: grow |power: skip |files: append |users: set password debian \(random|scripts: run |packages: )`)
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if !allowed.MatchString(l) {
			t.Errorf("plan line for something already done: %s", l)
		}
	}
	if d := testbin.Diff(before, fingerprint(t, root)); len(d) > 0 {
		t.Errorf("the dry run changed the tree:\n%s", strings.Join(d, "\n"))
	}
}
