package corpus

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/provision-dev/provision/test/testbin"
)

// expectation is a case's NAME.expect file (YAML).
type expectation struct {
	// Expect is applied (accepted and applied, no warning: --strict
	// passes too), warned (applied, with a warning naming each of Warns;
	// --strict fails) or refused (exit 2 with Refused in the message,
	// the tree untouched).
	Expect  string   `yaml:"expect"`
	Warns   []string `yaml:"warns"`
	Refused texts    `yaml:"refused"`
	// RefusedAt is where a refused input is turned down: "validate"
	// (the default: validate, the dry run and the run all refuse it) or
	// "run" (it is valid, but a run outside the initrd refuses it).
	RefusedAt string `yaml:"refused_at"`
	// Code is the exit status of a refused run (default 2, invalid
	// input; 1 is a run that failed and was rolled back).
	Code int `yaml:"code"`
	// DryRun: the input needs what a test cannot give (a network,
	// package repositories); only its plan is checked.
	DryRun bool `yaml:"dry_run"`
	// Plan lines (substrings) the dry run against the tree must print,
	// and ones it must not.
	Plan   []string `yaml:"plan"`
	NoPlan []string `yaml:"no_plan"`
	// Output substrings the run must print (stdout or stderr).
	Output []string `yaml:"output"`
	// Files checked in the tree after the run.
	Files []fileExpect `yaml:"files"`
}

// texts is one string or a list of them, each of which a message must
// contain.
type texts []string

func (x *texts) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*x = texts{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*x = l
	return nil
}

// in reports whether s contains every text.
func (x texts) in(s string) bool {
	for _, t := range x {
		if !strings.Contains(s, t) {
			return false
		}
	}
	return true
}

type fileExpect struct {
	Path     string   `yaml:"path"`
	Type     string   `yaml:"type"` // file (default), dir, link, absent
	Mode     string   `yaml:"mode"`
	Owner    string   `yaml:"owner"` // user:group, resolved in the tree
	Content  *string  `yaml:"content"`
	Contains []string `yaml:"contains"`
	Lacks    []string `yaml:"lacks"`
	Match    []string `yaml:"match"` // regular expressions, multi-line mode
	Target   string   `yaml:"target"`
}

// corpusCase is one input: its seed directory under testdata and its
// expectation.
type corpusCase struct {
	name, dir string
	exp       expectation
}

func loadCases(t *testing.T) []corpusCase {
	t.Helper()
	entries, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tree") {
			continue // NAME.tree is NAME's overlay, not a case
		}
		b, err := os.ReadFile(filepath.Join("testdata", e.Name()+".expect"))
		if err != nil {
			t.Errorf("%s: no expectation: %v", e.Name(), err)
			continue
		}
		var exp expectation
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&exp); err != nil {
			t.Errorf("%s.expect: %v", e.Name(), err)
			continue
		}
		switch exp.Expect {
		case "applied", "warned", "refused":
		default:
			t.Errorf("%s.expect: expect: %q is not applied, warned or refused", e.Name(), exp.Expect)
			continue
		}
		cases = append(cases, corpusCase{name: e.Name(), dir: filepath.Join("testdata", e.Name()), exp: exp})
	}
	if len(cases) == 0 {
		t.Fatal("no case in testdata")
	}
	return cases
}

// seedDir lays a case out as the source directory provision reads: a
// cloud-init case as a NoCloud seed (a meta-data naming the case added
// when it has none) or a ConfigDrive tree (openstack/), an Ignition
// case's config.ign under ignition/, a Combustion case's files under
// combustion/ (a medium's layout).
func seedDir(t *testing.T, c corpusCase) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "seed")
	switch {
	case exists(filepath.Join(c.dir, "config.ign")):
		if err := testbin.CopyTree(filepath.Join(c.dir, "config.ign"), filepath.Join(d, "ignition", "config.ign")); err != nil {
			t.Fatal(err)
		}
		if exists(filepath.Join(c.dir, "script")) {
			t.Fatalf("%s: both config.ign and script: put the script in combustion/", c.name)
		}
		if exists(filepath.Join(c.dir, "combustion")) {
			if err := testbin.CopyTree(filepath.Join(c.dir, "combustion"), filepath.Join(d, "combustion")); err != nil {
				t.Fatal(err)
			}
		}
	case exists(filepath.Join(c.dir, "script")):
		if err := testbin.CopyTree(c.dir, filepath.Join(d, "combustion")); err != nil {
			t.Fatal(err)
		}
	case exists(filepath.Join(c.dir, "openstack")):
		// A ConfigDrive tree as it is on the config-2 medium.
		if err := testbin.CopyTree(c.dir, d); err != nil {
			t.Fatal(err)
		}
	case exists(filepath.Join(c.dir, "user-data")):
		if err := testbin.CopyTree(c.dir, d); err != nil {
			t.Fatal(err)
		}
		if !exists(filepath.Join(d, "meta-data")) {
			md := "instance-id: iid-corpus-" + c.name + "\nlocal-hostname: corpus\n"
			if err := os.WriteFile(filepath.Join(d, "meta-data"), []byte(md), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	default:
		t.Fatalf("%s: neither user-data, openstack/, config.ign nor script", c.name)
	}
	return d
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// tally counts the outcomes for the closing figure.
type tally struct {
	mu                                     sync.Mutex
	inputs, applied, warned, refused, fail int
	failed                                 []string
}

func (tl *tally) add(c corpusCase, ok bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.inputs++
	if !ok {
		tl.fail++
		tl.failed = append(tl.failed, c.name)
		return
	}
	switch c.exp.Expect {
	case "applied":
		tl.applied++
	case "warned":
		tl.warned++
	case "refused":
		tl.refused++
	}
}

// TestCorpus runs every input of testdata as its expectation says.
func TestCorpus(t *testing.T) {
	if setupErr != nil {
		t.Fatalf("suite setup: %v", setupErr)
	}
	root := os.Geteuid() == 0
	var tl tally
	t.Run("case", func(t *testing.T) {
		for _, c := range loadCases(t) {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				defer func() { tl.add(c, !t.Failed()) }()
				runCase(t, c, root)
			})
		}
	})
	sort.Strings(tl.failed)
	t.Logf("corpus: %d inputs, %d accepted and applied, %d warned as expected, %d refused as expected, %d failures",
		tl.inputs, tl.applied, tl.warned, tl.refused, tl.fail)
	if !root {
		t.Logf("corpus: not root, so inputs were validated and dry-run only (a run writes owners and runs scripts in a chroot)")
	}
	if tl.fail > 0 {
		t.Errorf("failed: %s", strings.Join(tl.failed, ", "))
	}
}

func runCase(t *testing.T, c corpusCase, root bool) {
	seed := seedDir(t, c)
	exp := c.exp
	pristine := newTree(t, filepath.Join("testdata", c.name+".tree"))

	// validate against the tree (what only the image can tell is then
	// known), then --strict.
	v, err := provision("validate", "--root", pristine, seed)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := provision("validate", "--strict", "--root", pristine, seed)
	if err != nil {
		t.Fatal(err)
	}
	refusedEarly := exp.Expect == "refused" && exp.RefusedAt != "run"
	switch {
	case refusedEarly:
		if v.code != 2 || !exp.Refused.in(v.stderr) {
			t.Errorf("validate: want exit 2 naming %q; %s", exp.Refused, v)
		}
	case exp.Expect == "warned":
		if v.code != 0 {
			t.Errorf("validate: want exit 0 (warnings only); %s", v)
		}
		checkWarns(t, "validate", v.stderr, exp.Warns)
		if vs.code != 2 {
			t.Errorf("validate --strict: want exit 2 on the warnings; %s", vs)
		}
	default:
		if v.code != 0 || vs.code != 0 {
			t.Errorf("validate (and --strict): want exit 0; %s\n--strict: %s", v, vs)
		}
	}

	// The dry run against the pristine tree: the plan.
	before := fingerprint(t, pristine)
	d, err := provision("--dry-run", "--source", seed, "--root", pristine)
	if err != nil {
		t.Fatal(err)
	}
	if refusedEarly {
		if d.code != 2 || !exp.Refused.in(d.stderr) {
			t.Errorf("dry run: want exit 2 naming %q; %s", exp.Refused, d)
		}
	} else if d.code != 0 {
		t.Errorf("dry run: want exit 0; %s", d)
	}
	for _, p := range exp.Plan {
		if !strings.Contains(d.stdout, p) {
			t.Errorf("dry run: no plan line with %q; %s", p, d)
		}
	}
	for _, p := range exp.NoPlan {
		if strings.Contains(d.stdout, p) {
			t.Errorf("dry run: a plan line has %q; %s", p, d)
		}
	}
	if diff := testbin.Diff(before, fingerprint(t, pristine)); len(diff) > 0 {
		t.Errorf("the dry run changed the tree:\n%s", strings.Join(diff, "\n"))
	}
	if exp.DryRun {
		return
	}
	if !root {
		t.Log("not root: the run itself is skipped (it writes owners and runs programs in a chroot)")
		return
	}

	// The run on a fresh tree.
	tree := pristine
	report := filepath.Join(t.TempDir(), "report.json")
	r, err := provision("run", "--root", tree, "--source", seed, "--report", report)
	if err != nil {
		t.Fatal(err)
	}
	out := r.stdout + r.stderr
	if exp.Expect == "refused" {
		code := 2
		if exp.Code != 0 {
			code = exp.Code
		}
		if r.code != code || !exp.Refused.in(out) {
			t.Errorf("run: want exit %d naming %q; %s", code, exp.Refused, r)
		}
		// Only the run's record may be left: its report and log in
		// /var/log/provision (SPEC §2, step 8).
		var changed []string
		for _, d := range testbin.Diff(before, fingerprint(t, tree)) {
			if !strings.Contains(d, " var/log/provision") && !strings.HasPrefix(d, "changed var/log:") {
				changed = append(changed, d)
			}
		}
		if len(changed) > 0 {
			t.Errorf("a refused input changed the tree:\n%s", strings.Join(changed, "\n"))
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("run: want exit 0; %s", r)
	}
	if exp.Expect == "warned" {
		checkWarns(t, "run", out, exp.Warns)
	}
	for _, s := range exp.Output {
		if !strings.Contains(out, s) {
			t.Errorf("run: output lacks %q; %s", s, r)
		}
	}
	for _, f := range exp.Files {
		checkFile(t, tree, f)
	}
	if t.Failed() {
		t.Logf("the run: %s", r)
	}
}

// checkWarns asserts that each key is named on a line of out that is a
// warning about it.
func checkWarns(t *testing.T, what, out string, keys []string) {
	t.Helper()
	for _, k := range keys {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, k) && strings.Contains(strings.ToLower(l), "warn") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s: no warning naming %q in:\n%s", what, k, out)
		}
	}
}

func checkFile(t *testing.T, tree string, f fileExpect) {
	t.Helper()
	p := filepath.Join(tree, f.Path)
	info, err := os.Lstat(p)
	if f.Type == "absent" {
		if err == nil {
			t.Errorf("%s exists; want it absent", f.Path)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: %v", f.Path, err)
		return
	}
	switch f.Type {
	case "", "file":
		if !info.Mode().IsRegular() {
			t.Errorf("%s: %v, want a regular file", f.Path, info.Mode())
			return
		}
	case "dir":
		if !info.IsDir() {
			t.Errorf("%s: %v, want a directory", f.Path, info.Mode())
		}
	case "link":
		if info.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s: %v, want a symbolic link", f.Path, info.Mode())
			return
		}
		// cloud-init links /etc/localtime absolutely, systemd relatively:
		// the same file either way.
		l, _ := os.Readlink(p)
		resolved := l
		if !filepath.IsAbs(l) {
			resolved = filepath.Join(filepath.Dir(f.Path), l)
		}
		if f.Target != "" && l != f.Target && resolved != f.Target {
			t.Errorf("%s -> %s, want -> %s", f.Path, l, f.Target)
		}
	default:
		t.Errorf("%s: unknown type %q in the expectation", f.Path, f.Type)
	}
	if f.Mode != "" {
		want, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil {
			t.Errorf("%s: mode %q in the expectation: %v", f.Path, f.Mode, err)
		}
		perm := uint64(info.Mode().Perm())
		if info.Mode()&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if info.Mode()&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		if info.Mode()&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		if perm != want {
			t.Errorf("%s: mode %04o, want %04o", f.Path, perm, want)
		}
	}
	if f.Owner != "" {
		user, group, _ := strings.Cut(f.Owner, ":")
		st := info.Sys().(*syscall.Stat_t)
		wu, wg := lookupID(t, tree, "passwd", user), -1
		if group != "" {
			wg = lookupID(t, tree, "group", group)
		}
		if int(st.Uid) != wu || (group != "" && int(st.Gid) != wg) {
			t.Errorf("%s: owner %d:%d, want %s (%d:%d in the tree)", f.Path, st.Uid, st.Gid, f.Owner, wu, wg)
		}
	}
	if info.Mode().IsRegular() && (f.Content != nil || len(f.Contains)+len(f.Lacks)+len(f.Match) > 0) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Error(err)
			return
		}
		s := string(b)
		if f.Content != nil && s != *f.Content {
			t.Errorf("%s content:\n%q\nwant\n%q", f.Path, s, *f.Content)
		}
		for _, w := range f.Contains {
			if !strings.Contains(s, w) {
				t.Errorf("%s lacks %q:\n%s", f.Path, w, s)
			}
		}
		for _, w := range f.Lacks {
			if strings.Contains(s, w) {
				t.Errorf("%s has %q:\n%s", f.Path, w, s)
			}
		}
		for _, m := range f.Match {
			re, err := regexp.Compile("(?m)" + m)
			if err != nil {
				t.Errorf("%s: match %q in the expectation: %v", f.Path, m, err)
				continue
			}
			if !re.MatchString(s) {
				t.Errorf("%s does not match %s:\n%s", f.Path, m, s)
			}
		}
	}
}

// lookupID resolves a user or group name against the TREE's databases,
// never the host's; a number is taken as it is.
func lookupID(t *testing.T, tree, db, name string) int {
	t.Helper()
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	b, err := os.ReadFile(filepath.Join(tree, "etc", db))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[0] == name {
			n, _ := strconv.Atoi(f[2])
			return n
		}
	}
	t.Errorf("no %s entry %q in the tree", db, name)
	return -1
}

// fingerprint describes every path under root (type, mode, owner, size,
// inode, mtime, a file's ctime, link target): equal fingerprints mean an
// untouched tree. The ctime moves with any write, chmod, chown or rename
// and cannot be set back, so no content is hashed (the tree holds tens of
// MiB of programs and zoneinfo, for every case).
func fingerprint(t *testing.T, root string) map[string]string {
	t.Helper()
	state := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v %d:%d size=%d ino=%d mtime=%d", info.Mode(), st.Uid, st.Gid,
			st.Size, st.Ino, info.ModTime().UnixNano())
		if !info.IsDir() {
			// (A directory's ctime also moves when the run sets a mode
			// or owner it already has; its entries are compared anyway.)
			desc += fmt.Sprintf(" ctime=%d.%09d", st.Ctim.Sec, st.Ctim.Nsec)
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			desc += " -> " + l
		}
		state[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}
