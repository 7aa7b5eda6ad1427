package selinux

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	file    = fs.FileMode(0o644)
	dir     = fs.ModeDir | 0o755
	lnk     = fs.ModeSymlink | 0o777
	chr     = fs.ModeDevice | fs.ModeCharDevice | 0o600
	blk     = fs.ModeDevice | 0o600
	fifo    = fs.ModeNamedPipe | 0o600
	sock    = fs.ModeSocket | 0o600
	unknown = fs.ModeIrregular
)

var lookupTests = []struct {
	path string
	mode fs.FileMode
	want string // "" means ok=false
}{
	// An exact entry beats a later regex; among exact entries the last
	// one (here from .local) wins.
	{"/etc/secret", file, "local_secret_t"},
	{"/etc/secret", dir, "late_regex_t"},
	{"/etc/secrets", file, "late_regex_t"},
	{"/etc/passwd", file, "etc_t"},
	{"/etc/hostname", file, "local_t"},
	{"/etc/hostname", dir, "etc_t"},
	// File types.
	{"/etc/units/a.timer", file, "timer_t"},
	{"/etc/units/a.timer", lnk, "unit_link_t"},
	{"/etc/units/a.timer", dir, "unit_t"},
	{"/etc/node", chr, "chr_t"},
	{"/etc/node", blk, "blk_t"},
	{"/etc/node", fifo, "fifo_t"},
	{"/etc/node", sock, "sock_t"},
	{"/etc/node", file, "etc_t"},
	{"/etc/node", unknown, "sock_t"},
	// Escaped dots are literal.
	{"/etc/rc.d/init.d", dir, "initrc_dir_t"},
	{"/etc/rcxd/init.d", dir, "etc_t"},
	// <<none>>.
	{"/tmp/x", file, ""},
	{"/tmp", file, ""},
	{"/tmp", dir, "tmp_t"},
	// A later regex beats an earlier one; .local comes after the rest.
	{"/usr/lib/app/bin/x", file, "local_bin_t"},
	{"/usr/lib/app/x", file, "lib_t"},
	// Equivalences: dist, local then dist, component boundaries, the
	// last matching line (not the longest), and a "/" destination.
	{"/lib/app/bin/x", file, "local_bin_t"},
	{"/app/bin/x", file, "local_bin_t"},
	{"/etc/systemd/system/foo.timer", file, "timer_t"},
	{"/etc/systemd/system", dir, "unit_t"},
	{"/etc/systemd/systemd.conf", file, "etc_t"},
	{"/srv/web/index.html", file, "etc_t"},
	{"/strip/etc/passwd", file, "etc_t"},
	{"/strip", dir, "root_t"},
	{"/stripped", file, "default_t"},
	// A top-level '|' anchors only the outer ends, as in libselinux.
	{"/alt/anything", file, "alt_t"},
	{"/usr/x/y", file, "alt_t"},
	// An optional last character of the literal prefix.
	{"/usr/share/font/a", file, "font_t"},
	{"/usr/share/fonts/a", file, "font_t"},
	// homedirs.
	{"/home", dir, "home_root_t"},
	{"/home/alice", dir, "user_home_dir_t"},
	{"/home/alice", file, "default_t"},
	{"/home/alice/x", file, "user_home_t"},
	{"/home/alice/.ssh/authorized_keys", file, "ssh_home_t"},
	{"/root/.ssh/authorized_keys", file, "ssh_home_t"},
	{"/root/x", file, "admin_home_t"},
	// Path normalisation.
	{"/", dir, "root_t"},
	{"//", dir, "root_t"},
	{"/etc//passwd/", file, "etc_t"},
	{"/nope", file, "default_t"},
	{"relative", file, ""},
	{"", file, ""},
	// PCRE without UTF matches bytes: '.' is one byte of a two-byte
	// character, so "/var/one/." does not match "é".
	{"/var/one/x", file, "one_t"},
	{"/var/one/\u00e9", file, "default_t"},
	{"/var/one/\xff", file, "one_t"},
}

var homeTypes = map[string]bool{"user_home_dir_t": true, "user_home_t": true, "ssh_home_t": true, "admin_home_t": true}

func loadTestdata(t testing.TB) *Policy {
	t.Helper()
	p, err := Load("testdata/root")
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Fatal("Load(testdata/root) = nil")
	}
	return p
}

func TestLookup(t *testing.T) {
	p := loadTestdata(t)
	if p.Type != "mini" || p.Mode != "enforcing" {
		t.Errorf("Type, Mode = %q, %q; want mini, enforcing", p.Type, p.Mode)
	}
	for _, tt := range lookupTests {
		got, ok := p.Lookup(tt.path, tt.mode)
		want := tt.want
		if want != "" {
			user := "system_u"
			if homeTypes[tt.want] {
				// These come from the made-up file_contexts.homedirs.
				user = "unconfined_u"
			}
			want = user + ":object_r:" + want + ":s0"
		}
		if got != want || ok != (want != "") {
			t.Errorf("Lookup(%q, %v) = %q, %v; want %q", tt.path, tt.mode, got, ok, want)
		}
	}
}

// TestLookupMatchesMatchpathcon runs the same table through libselinux when
// it is installed, so the expectations above are libselinux's, not ours.
func TestLookupMatchesMatchpathcon(t *testing.T) {
	if _, err := exec.LookPath("matchpathcon"); err != nil {
		t.Skipf("matchpathcon not installed (apt-get install selinux-utils): %v", err)
	}
	p := loadTestdata(t)
	types := map[fs.FileMode]string{file: "f", dir: "d", lnk: "l", chr: "c", blk: "b", fifo: "p", sock: "s"}
	for _, tt := range lookupTests {
		if tt.path == "" || tt.path[0] != '/' {
			continue
		}
		args := []string{"-f", p.FileContexts}
		if tt.mode != unknown {
			args = append(args, "-m", types[tt.mode])
		}
		out, err := exec.Command("matchpathcon", append(args, tt.path)...).CombinedOutput()
		if err != nil {
			t.Errorf("matchpathcon %q: %v\n%s", tt.path, err, out)
			continue
		}
		_, ref, _ := strings.Cut(strings.TrimSpace(string(out)), "\t")
		got, ok := p.Lookup(tt.path, tt.mode)
		if !ok {
			got = "<<none>>"
		}
		if got != ref {
			t.Errorf("Lookup(%q, %v) = %q, matchpathcon %q", tt.path, tt.mode, got, ref)
		}
	}
}

func TestReadConfig(t *testing.T) {
	for cfg, want := range map[string][2]string{
		"SELINUX=enforcing\nSELINUXTYPE=targeted\n":                {"enforcing", "targeted"},
		"SELINUX=Permissive # x\n  selinuxtype= mls \t\n":          {"permissive", "mls"},
		"SELINUX=on\nSELINUXTYPE=a\nSELINUXTYPE=b\n":               {"", "b"},
		" SELINUX=disabled\nSELINUX=enforcing\nSELINUX=disabled\n": {"enforcing", ""},
		"#SELINUX=disabled\nSELINUX = disabled\nSELINUXTYPE=t\n":   {"", "t"},
	} {
		name := filepath.Join(t.TempDir(), "config")
		write(t, name, cfg)
		mode, typ, err := readConfig(name)
		if err != nil || mode != want[0] || typ != want[1] {
			t.Errorf("readConfig(%q) = %q, %q, %v; want %q, %q", cfg, mode, typ, err, want[0], want[1])
		}
	}
}

func TestLoadDefaultType(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/selinux/config"), "SELINUX=enforcing\n")
	write(t, filepath.Join(root, "etc/selinux/targeted/contexts/files/file_contexts"), "/.* system_u:object_r:default_t:s0\n")
	p, err := Load(root)
	if err != nil || p == nil || p.Type != "targeted" {
		t.Fatalf("Load without SELINUXTYPE = %+v, %v; want libselinux's default, targeted", p, err)
	}
}

func TestLoadWithoutSELinux(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"no config": {},
		"disabled": {
			"etc/selinux/config":                            "SELINUX=disabled\nSELINUXTYPE=mini\n",
			"etc/selinux/mini/contexts/files/file_contexts": "/.* system_u:object_r:default_t:s0\n",
		},
		"policy not installed": {"etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=targeted\n"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for n, c := range files {
				write(t, filepath.Join(root, n), c)
			}
			p, err := Load(root)
			if p != nil || err != nil {
				t.Errorf("Load = %v, %v; want nil, nil", p, err)
			}
			if _, ok := p.Lookup("/etc", dir); ok {
				t.Error("Lookup on a nil Policy reported a label")
			}
			if err := p.Label(root, "/"); err != nil {
				t.Errorf("Label on a nil Policy: %v", err)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	const fcPath = "etc/selinux/t/contexts/files/file_contexts"
	for name, tt := range map[string]struct {
		files map[string]string
		want  string
	}{
		"type escapes":  {map[string]string{"etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=../x\n"}, "config:2: SELINUXTYPE=\"../x\""},
		"no type value": {map[string]string{"etc/selinux/config": "SELINUXTYPE=\n"}, "config:1: SELINUXTYPE=\"\""},
		"no contexts":   {map[string]string{"etc/selinux/config": "SELINUX=enforcing\nSELINUXTYPE=t\n", "etc/selinux/t/contexts/files/x": ""}, "file_contexts: no such file"},
		"missing field": {map[string]string{fcPath: "# c\n\n/etc\n"}, "file_contexts:3: missing context"},
		"bad type":      {map[string]string{fcPath: "/etc -x system_u:object_r:etc_t:s0\n"}, "file_contexts:1: invalid file type \"-x\""},
		"comment after": {map[string]string{fcPath: "/etc system_u:object_r:etc_t:s0 # no\n"}, "file_contexts:1: invalid file type"},
		"bad regex":     {map[string]string{fcPath: "/ok x:y:z\n/etc(/.* x:y:z\n"}, "file_contexts:2: regex \"/etc(/.*\" is not supported"},
		"lookaround":    {map[string]string{fcPath: "/etc/(?!x).* x:y:z\n"}, "file_contexts:1: regex"},
		"non-ascii":     {map[string]string{fcPath: "/etc/\u00e9 x:y:z\n"}, "file_contexts:1: non-ASCII"},
		"bad local":     {map[string]string{fcPath: "/.* x:y:z\n", fcPath + ".local": "\n\n[ x:y:z\n"}, "file_contexts.local:3: regex"},
		"bad homedirs":  {map[string]string{fcPath: "/.* x:y:z\n", fcPath + ".homedirs": "/home\n"}, "file_contexts.homedirs:1: missing context"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			write(t, filepath.Join(root, "etc/selinux/config"), "SELINUX=permissive\nSELINUXTYPE=t\n")
			for n, c := range tt.files {
				write(t, filepath.Join(root, n), c)
			}
			_, err := Load(root)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error = %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLabel(t *testing.T) {
	p := loadTestdata(t)
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/units/a.timer"), "")
	if err := os.Symlink("/nonexistent", filepath.Join(root, "etc/units/b.timer")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "tmp/x"), "")
	for target, want := range map[string]string{
		"/etc/units/a.timer": "system_u:object_r:timer_t:s0",
		"/etc/units/b.timer": "system_u:object_r:unit_link_t:s0",
		"/etc/units":         "system_u:object_r:unit_t:s0",
		"/tmp/x":             "",
	} {
		host := filepath.Join(root, target)
		if err := p.Label(host, target); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				t.Skipf("this filesystem does not take security.selinux xattrs here: %v", err)
			}
			t.Fatal(err)
		}
		got := getxattr(t, host)
		if want == "" {
			if got != nil {
				t.Errorf("%s labelled %q; want no label", target, got)
			}
			continue
		}
		if string(got) != want+"\x00" {
			t.Errorf("%s labelled %q; want %q with a NUL", target, got, want)
		}
	}
	if err := p.Label(filepath.Join(root, "missing"), "/missing"); err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Label of a missing file: %v; want ErrNotExist", err)
	}
}

func TestLiteralPrefix(t *testing.T) {
	for re, want := range map[string]string{
		`/etc/foo(/.*)?`:   "/etc/foo",
		`/etc/fo?`:         "/etc/f",
		`/etc/fo*`:         "/etc/f",
		`/etc/fo+`:         "/etc/fo",
		`/etc/f\.o\.?`:     "/etc/f.o",
		`/etc/f{2}`:        "/etc/",
		`/a|/b`:            "",
		`/a(b|c)`:          "/a",
		`/a[|]b`:           "/a",
		`/a[]|]|/b`:        "",
		`/a\d`:             "/a",
		`/a\Qx\E`:          "",
		`/usr/lib/x86_64`:  "/usr/lib/x86_64",
		`(?i)/etc`:         "",
		`/a[[:alpha:]|]b`:  "/a",
		`/a[[:alpha:]]|/b`: "",
	} {
		if got := literalPrefix(re); got != want {
			t.Errorf("literalPrefix(%q) = %q; want %q", re, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"/etc(/.*)?\tsystem_u:object_r:etc_t:s0\n/etc/x -- <<none>>\n",
		"/a|/b -d x\n/c[ x\n",
		"/x\\ x\n/y\\Qa|b\\E x\n/usr/share/fonts?(/.*)? x\n",
		"# c\n  \n/a b c d e\n",
	} {
		f.Add([]byte(s), "/etc/x")
	}
	f.Fuzz(func(t *testing.T, data []byte, path string) {
		db := &database{stemIndex: map[string]int{}}
		specs, err := db.parse("fuzz", data)
		if err != nil {
			return
		}
		db.base = specs
		db.index()
		db.subs = []substitution{{src: "/s", dst: "/"}, {src: "/t", dst: "/etc"}}
		for _, k := range []kind{kindAny, kindReg, kindDir, kindLnk} {
			db.lookup(path, k)
			db.lookup("/"+path, k)
		}
		// The shortcuts must agree with the regex: a literal entry matches
		// only its string, and a match always starts with the prefix.
		for _, s := range specs {
			re, err := regexp.Compile(anchor(s.regex))
			if err != nil {
				if !s.isLiteral {
					t.Fatalf("%s: %q passed the syntax check but does not compile: %v", s.origin, s.regex, err)
				}
				continue
			}
			for _, key := range []string{path, "/" + path, s.literal, s.prefix} {
				m := re.MatchString(byteKey(key))
				if s.isLiteral && m != s.match(key) {
					t.Fatalf("%s: literal %q and regex %q disagree on %q", s.origin, s.literal, s.regex, key)
				}
				if !s.isLiteral && m && !strings.HasPrefix(key, s.prefix) {
					t.Fatalf("%s: %q matches %q without the prefix %q", s.origin, s.regex, key, s.prefix)
				}
			}
		}
	})
}

func TestAddHomeRoots(t *testing.T) {
	root := t.TempDir()
	if out, err := exec.Command("cp", "-a", "testdata/root/.", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	if added, err := p.AddHomeRoots(root); err != nil || added != nil {
		t.Fatalf("AddHomeRoots without a template = %q, %v; want nothing", added, err)
	}
	write(t, filepath.Join(root, "var/lib/selinux/mini/active/homedir_template"), strings.Join([]string{
		"HOME_DIR\t-d\tsystem_u:object_r:user_home_dir_t:s0",
		"HOME_DIR/.+\tsystem_u:object_r:user_home_t:s0",
		"HOME_DIR/\\.ssh(/.*)?\tsystem_u:object_r:ssh_home_t:s0",
		"HOME_DIR/\\.ROLE_cfg\tsystem_u:object_r:ROLE_cfg_t:s0",
		"HOME_ROOT\t-d\tsystem_u:object_r:home_root_t:s0",
		"HOME_ROOT/lost\\+found/.*\t<<none>>",
		"/run/user/%{USERID}\t-d\tsystem_u:object_r:user_runtime_t:s0",
	}, "\n")+"\n")
	write(t, filepath.Join(root, "var/lib/selinux/mini/active/users_extra"), "user staff_u prefix staff;\n")
	write(t, filepath.Join(root, "etc/selinux/mini/seusers"), "root:unconfined_u:s0\n__default__:staff_u:s0\n")
	write(t, filepath.Join(root, "etc/passwd"), strings.Join([]string{
		"root:x:0:0::/root:/bin/bash",
		"daemon:x:2:2::/var/lib/daemon/home:/bin/bash",      // below UID_MIN
		"nologin:x:1003:1003::/srv/nologin/x:/sbin/nologin", // not a login shell
		"flat:x:1004:1004::/flat:/bin/bash",                 // home "/x"
		"web:x:1005:1005::/var/www/web:/bin/bash",           // /var/www is claimed by the policy
		"carol:x:1001:1001::/data/homes/carol/:/bin/bash",
		"dave:x:1002:1002::/data/homes/dave:/bin/sh",
	}, "\n")+"\n")
	write(t, filepath.Join(root, "etc/shells"), "/bin/sh\n/bin/bash\n/sbin/nologin\n")
	write(t, filepath.Join(root, "etc/login.defs"), "# c\nUID_MIN 1000\nUID_MAX 60000\n")

	added, err := p.AddHomeRoots(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// The existing homedirs file does not have exactly these lines
		// for /home, so /home is generated too, ranking before .local.
		"/data/homes/[^/]+\t-d\tstaff_u:object_r:user_home_dir_t:s0",
		"/data/homes/[^/]+/.+\tstaff_u:object_r:user_home_t:s0",
		"/data/homes/[^/]+/\\.ssh(/.*)?\tstaff_u:object_r:ssh_home_t:s0",
		"/data/homes/[^/]+/\\.staff_cfg\tstaff_u:object_r:staff_cfg_t:s0",
		"/data/homes\t-d\tsystem_u:object_r:home_root_t:s0",
		"/data/homes/lost\\+found/.*\t<<none>>",
	}
	if got := strings.Join(added[:min(len(added), 6)], "\n"); got != strings.Join(want, "\n") {
		t.Errorf("AddHomeRoots added:\n%s\nwant first:\n%s", strings.Join(added, "\n"), strings.Join(want, "\n"))
	}
	for _, a := range added {
		if strings.Contains(a, "/var/lib/daemon") || strings.Contains(a, "/srv/nologin") || strings.HasPrefix(a, "/var/www") || strings.HasPrefix(a, "/flat") {
			t.Errorf("AddHomeRoots added %q for a user genhomedircon ignores", a)
		}
	}
	for path, want := range map[string]string{
		"/data/homes/carol/.ssh/authorized_keys": "staff_u:object_r:ssh_home_t:s0",
		"/data/homes/carol/x":                    "staff_u:object_r:user_home_t:s0",
		"/data/homes":                            "system_u:object_r:home_root_t:s0",
		"/etc/hostname":                          "system_u:object_r:local_t:s0", // .local still wins
	} {
		mode := file
		if path == "/data/homes" {
			mode = dir
		}
		if got, _ := p.Lookup(path, mode); got != want {
			t.Errorf("after AddHomeRoots Lookup(%q) = %q; want %q", path, got, want)
		}
	}
	if _, ok := p.Lookup("/data/homes/lost+found/x", file); ok {
		t.Error("lost+found content should be <<none>>")
	}
	if again, err := p.AddHomeRoots(root); err != nil || len(again) != 0 {
		t.Errorf("second AddHomeRoots = %d lines, %v; want none", len(again), err)
	}
}

// TestLookupConcurrent exercises the lazy regex compilation from several
// goroutines (run with -race).
func TestLookupConcurrent(t *testing.T) {
	p := loadTestdata(t)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for _, tt := range lookupTests {
				p.Lookup(tt.path, tt.mode)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if got, _ := p.Lookup("/etc/units/a.timer", file); got != "system_u:object_r:timer_t:s0" {
		t.Errorf("after concurrent lookups: %q", got)
	}
}
