package accounts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/rootfs"
)

func TestRoundTripAndEntries(t *testing.T) {
	tests := []struct {
		kind    Kind
		in      string
		entries []string // names of the lines recognized as entries
	}{
		{PasswdKind, "root:x:0:0:root:/root:/bin/bash\n# comment\n\nbroken\n+@ng::::::\n-bob::::::\n", []string{"root"}},
		{PasswdKind, "a:x:1:1::/:/bin/sh", []string{"a"}},                           // no final newline
		{PasswdKind, "a:x:1:1::/:/bin/sh\r\nb:x:x:1::/:/bin/sh\n", []string{"a"}},   // CR kept in the shell; bad uid
		{PasswdKind, "#old:x:5:5::/:/bin/sh\nc:x:1:1::/:\n", []string{"#old", "c"}}, // shadow-utils has no comments
		{PasswdKind, "a:x:1:1::/:/bin/sh:extra\n", nil},
		{GroupKind, "wheel:x:10:a,b\nshort:x:11\nbad:x::\n", []string{"wheel", "short"}},
		{ShadowKind, "a:!:19000:0:99999:7:::\nold:x:1:2:3\neight:x:1::::::\nbad:x:abc::::::\n", []string{"a", "old", "eight"}},
		{GshadowKind, "g:!::a\nbad:!:\n", []string{"g"}},
		{SubUIDKind, "a:100000:65536\nb:1:x\n", []string{"a"}},
		{PasswdKind, "", nil},
		{PasswdKind, "\n\n", nil},
	}
	for _, tc := range tests {
		f := Parse(tc.kind, []byte(tc.in))
		if got := string(f.Bytes()); got != tc.in {
			t.Errorf("%s %q: round trip gave %q", tc.kind.Path, tc.in, got)
		}
		var names []string
		for _, l := range f.Entries() {
			names = append(names, l.Name())
		}
		if strings.Join(names, ",") != strings.Join(tc.entries, ",") {
			t.Errorf("%s %q: entries %v, want %v", tc.kind.Path, tc.in, names, tc.entries)
		}
	}
}

func TestAppendBeforeNIS(t *testing.T) {
	f := Parse(PasswdKind, []byte("root:x:0:0::/root:/bin/sh\n+::::::\n# trailing"))
	f.Append([]string{"new", "x", "1000", "1000", "", "/home/new", "/bin/sh"})
	want := "root:x:0:0::/root:/bin/sh\nnew:x:1000:1000::/home/new:/bin/sh\n+::::::\n# trailing"
	if got := string(f.Bytes()); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func newRoot(t *testing.T, files map[string]string) *rootfs.Root {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		h := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rootfs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLookup(t *testing.T) {
	r := newRoot(t, map[string]string{
		"etc/passwd": "root:x:0:0::/root:/bin/sh\nalice:x:1000:1001::/home/alice:/bin/sh\n1234:x:1500:1500::/h:/bin/sh\n",
		"etc/group":  "root:x:0:\nstaff:x:50:\n",
	})
	tests := []struct {
		name      string
		uid, gid  int
		home      string
		wantError bool
	}{
		{"alice", 1000, 1001, "/home/alice", false},
		{"1000", 1000, 1001, "/home/alice", false}, // numeric: the entry with that uid
		{"1234", 1500, 1500, "/h", false},          // a name wins over a number
		{"4321", 4321, -1, "", false},              // unknown number: chown semantics
		{"bob", -1, -1, "", true},
		{"", -1, -1, "", true},
	}
	for _, tc := range tests {
		uid, gid, home, err := LookupUser(r, tc.name)
		if (err != nil) != tc.wantError || uid != tc.uid || gid != tc.gid || home != tc.home {
			t.Errorf("LookupUser(%q) = %d %d %q %v", tc.name, uid, gid, home, err)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupUser(%q): %v is not ErrNotFound", tc.name, err)
		}
	}
	if gid, err := LookupGroup(r, "staff"); gid != 50 || err != nil {
		t.Errorf("LookupGroup(staff) = %d %v", gid, err)
	}
	if gid, err := LookupGroup(r, "77"); gid != 77 || err != nil {
		t.Errorf("LookupGroup(77) = %d %v", gid, err)
	}
	if _, err := LookupGroup(r, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LookupGroup(nope): %v", err)
	}
	empty := newRoot(t, nil)
	if _, _, _, err := LookupUser(empty, "root"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no passwd: %v", err)
	}
}

func dbWith(passwd, group, defs string) *DB {
	return &DB{
		Passwd: Parse(PasswdKind, []byte(passwd)), Group: Parse(GroupKind, []byte(group)),
		Defs: ParseLoginDefs([]byte(defs)), Defaults: UseraddDefaults{Group: "100", Home: "/home", Shell: "/bin/sh", Inactive: -1},
	}
}

func TestNewUID(t *testing.T) {
	pw := func(uids ...string) string {
		var b strings.Builder
		for i, u := range uids {
			b.WriteString("u" + string(rune('a'+i)) + ":x:" + u + ":100::/:/bin/sh\n")
		}
		return b.String()
	}
	defs := "UID_MIN 1000\nUID_MAX 1005\nSYS_UID_MIN 100\nSYS_UID_MAX 105\n"
	tests := []struct {
		name   string
		passwd string
		system bool
		want   int
		err    bool
	}{
		{"empty regular", "", false, 1000, false},
		{"above highest", pw("1000", "1002"), false, 1003, false},
		{"ids outside range ignored", pw("0", "65534", "1001"), false, 1002, false},
		{"wrap to lowest free", pw("1005", "1001"), false, 1000, false},
		{"full", pw("1000", "1001", "1002", "1003", "1004", "1005"), false, -1, true},
		{"empty system", "", true, 105, false},
		{"below lowest system", pw("104", "105"), true, 103, false},
		{"system wraps to top", pw("100", "103"), true, 105, false},
		{"system gap", pw("100", "105", "104"), true, 103, false},
	}
	for _, tc := range tests {
		db := dbWith(tc.passwd, "", defs)
		got, err := db.NewUID(tc.system)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%s: NewUID = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
	// Compiled-in defaults when login.defs is absent: 1000..60000, 101..999.
	db := dbWith("", "", "")
	if got, _ := db.NewUID(true); got != 999 {
		t.Errorf("default system uid %d", got)
	}
	// A user-private group takes the uid when free, else the next gid.
	db = dbWith("", "g:x:1000:\n", "")
	pref := 1000
	if got, _ := db.NewGID(false, &pref); got != 1001 {
		t.Errorf("private gid %d, want 1001", got)
	}
	pref = 1003
	if got, _ := db.NewGID(false, &pref); got != 1003 {
		t.Errorf("private gid %d, want 1003", got)
	}
}

func TestSubRangesSortedLikeUseradd(t *testing.T) {
	db := dbWith("", "", "SUB_UID_MIN 100000\nSUB_UID_MAX 600100000\nSUB_UID_COUNT 65536\n")
	db.SubUID = Parse(SubUIDKind, []byte("z:300000:65536\n# c1\na:100000:65536\n# c2\n+nis\n"))
	start, count, err := db.newSubRange(db.SubUID, "UID")
	if err != nil || start != 165536 || count != 65536 {
		t.Fatalf("got %d %d %v", start, count, err)
	}
	// Entries sorted by start, other lines after them (glibc msort with
	// subordinate_range_cmp reverses the two comments), NIS last.
	want := "a:100000:65536\nz:300000:65536\n# c2\n# c1\n+nis\n"
	if got := string(db.SubUID.Bytes()); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAddUserAndPasswords(t *testing.T) {
	db := dbWith("root:x:0:0::/root:/bin/sh\n", "root:x:0:\nusers:x:100:\nwheel:x:10:root\n",
		"USERGROUPS_ENAB yes\nPASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\nPASS_WARN_AGE 7\n")
	db.Shadow = Parse(ShadowKind, []byte("root:*:19000:0:99999:7:::\n"))
	db.Gshadow = Parse(GshadowKind, []byte("root:*::\nusers:*::\nwheel:*::root\n"))
	db.Now = func() time.Time { return time.Unix(20000*86400+5, 0) }
	nu, err := db.AddUser(UserSpec{Name: "alice", Groups: []string{"wheel"}, Comment: "A"})
	if err != nil {
		t.Fatal(err)
	}
	if nu.UID != 1000 || nu.GID != 1000 || nu.Home != "/home/alice" || nu.Shell != "/bin/sh" {
		t.Errorf("new user %+v", nu)
	}
	checks := map[*File]string{
		db.Passwd:  "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000:A:/home/alice:/bin/sh\n",
		db.Group:   "root:x:0:\nusers:x:100:\nwheel:x:10:root,alice\nalice:x:1000:\n",
		db.Shadow:  "root:*:19000:0:99999:7:::\nalice:!:20000:0:99999:7:::\n",
		db.Gshadow: "root:*::\nusers:*::\nwheel:*::root,alice\nalice:!::\n",
	}
	for f, want := range checks {
		if got := string(f.Bytes()); got != want {
			t.Errorf("%s:\n%s\nwant\n%s", f.Kind.Path, got, want)
		}
	}
	if _, err := db.AddUser(UserSpec{Name: "alice"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate user: %v", err)
	}
	if _, err := db.AddUser(UserSpec{Name: "bob", Groups: []string{"nogroup"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing group: %v", err)
	}
	if err := db.SetPassword("alice", "$6$s$h"); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.LockPassword("alice"); !c {
		t.Error("lock did not change")
	}
	if c, _ := db.LockPassword("alice"); c {
		t.Error("second lock changed")
	}
	if h, _ := db.PasswordHash("alice"); h != "!$6$s$h" {
		t.Errorf("hash %q", h)
	}
	if c, _ := db.ExpirePassword("alice"); !c {
		t.Error("expire did not change")
	}
	if l := db.Shadow.Lookup("alice"); l.Fields[SpLstchg] != "0" {
		t.Errorf("lastchg %q", l.Fields[SpLstchg])
	}
	if err := db.SetPassword("alice", "a:b"); err == nil {
		t.Error("colon in hash accepted")
	}
}

func TestNoShadowKeepsPasswordInPasswd(t *testing.T) {
	db := dbWith("", "", "USERGROUPS_ENAB no\n")
	nu, err := db.AddUser(UserSpec{Name: "alice", Password: "$1$x$y"})
	if err != nil {
		t.Fatal(err)
	}
	if nu.GID != 100 {
		t.Errorf("gid %d, want GROUP=100", nu.GID)
	}
	if got := string(db.Passwd.Bytes()); got != "alice:$1$x$y:1000:100::/home/alice:/bin/sh\n" {
		t.Errorf("passwd %q", got)
	}
}

func TestLoginDefs(t *testing.T) {
	d := ParseLoginDefs([]byte("UMASK 027\n# x\nHOME_MODE\t0700\nUID_MIN  \"2000\"\nHEX 0x10\nBAD 1_000\nUSERGROUPS_ENAB YES\n"))
	if d.Num("UMASK", 0) != 0o27 || d.Num("HOME_MODE", 0) != 0o700 || d.Num("UID_MIN", 0) != 2000 || d.Num("HEX", 0) != 16 || d.Num("BAD", 7) != 7 {
		t.Errorf("numbers wrong")
	}
	if !d.Bool("USERGROUPS_ENAB") {
		t.Error("bool")
	}
	if m := HomeMode(d); m != 0o700 {
		t.Errorf("HOME_MODE %o", m)
	}
	if m := HomeMode(ParseLoginDefs([]byte("UMASK 027\n"))); m != 0o750 {
		t.Errorf("from UMASK %o", m)
	}
	if m := HomeMode(ParseLoginDefs(nil)); m != 0o755 {
		t.Errorf("default %o", m)
	}
}

func TestLoginDefsFallbackAndDefaults(t *testing.T) {
	r := newRoot(t, map[string]string{
		"usr/etc/login.defs":      "UID_MIN 500\n",
		"usr/etc/default/useradd": "GROUP=users\nHOME=/var/home\nSHELL=/bin/bash\nINACTIVE=30\nCREATE_MAIL_SPOOL=yes\n",
	})
	d, err := ReadLoginDefs(r)
	if err != nil || d.Path != "/usr/etc/login.defs" || d.Num("UID_MIN", 0) != 500 {
		t.Errorf("login.defs %+v %v", d, err)
	}
	u, err := ReadUseraddDefaults(r)
	if err != nil || u.Group != "users" || u.Home != "/var/home" || u.Shell != "/bin/bash" || u.Inactive != 30 || !u.CreateMailSpool || u.Skel != "/etc/skel" {
		t.Errorf("defaults %+v %v", u, err)
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"alice", "a.b", "_x", "Bob", "machine$", "1a", "a-b"} {
		if err := ValidName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", "-a", "123", ".", "..", "a:b", "a b", "a$b", strings.Repeat("a", 33), "é"} {
		if ValidName(n) == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestSaveKeepsModeAndWritesBackup(t *testing.T) {
	r := newRoot(t, map[string]string{
		"etc/passwd": "root:x:0:0::/root:/bin/sh",
		"etc/group":  "root:x:0:\n",
		"etc/shadow": "root:*:1:::::\n",
	})
	if err := os.Chmod(filepath.Join(r.Dir, "etc/shadow"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Update(r, nil, func(db *DB) error {
		_, err := db.AddUser(UserSpec{Name: "a", NoUserGroup: true})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(r.Dir, "etc/shadow"))
	if st.Mode().Perm() != 0o600 {
		t.Errorf("shadow mode %v", st.Mode())
	}
	old, _ := os.ReadFile(filepath.Join(r.Dir, "etc/passwd-"))
	if string(old) != "root:x:0:0::/root:/bin/sh" {
		t.Errorf("backup %q", old)
	}
	cur, _ := os.ReadFile(filepath.Join(r.Dir, "etc/passwd"))
	if !strings.HasPrefix(string(cur), "root:x:0:0::/root:/bin/sh\na:x:1000:100:") {
		t.Errorf("passwd %q", cur)
	}
	lk, err := os.Stat(filepath.Join(r.Dir, "etc/.pwd.lock"))
	if err != nil || lk.Mode().Perm() != 0o600 {
		t.Errorf("lock file %v %v", lk, err)
	}
}

func TestLockRefusesSymlink(t *testing.T) {
	r := newRoot(t, map[string]string{"etc/x": ""})
	if err := os.Symlink("/etc/x", filepath.Join(r.Dir, "etc/.pwd.lock")); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(r); err == nil {
		t.Error("lock through a symlink accepted")
	}
}

func TestCreateHome(t *testing.T) {
	r := newRoot(t, map[string]string{"etc/skel/.bashrc": "x\n", "usr/etc/skel/.bashrc": "usr\n", "usr/etc/skel/.vimrc": "v\n"})
	created, err := CreateHome(r, "/home/a", os.Getuid(), os.Getgid(), 0o750, []string{"/etc/skel", "/usr/etc/skel"})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	st, _ := os.Stat(filepath.Join(r.Dir, "home/a"))
	if st.Mode().Perm() != 0o750 {
		t.Errorf("home mode %v", st.Mode())
	}
	b, _ := os.ReadFile(filepath.Join(r.Dir, "home/a/.bashrc"))
	v, _ := os.ReadFile(filepath.Join(r.Dir, "home/a/.vimrc"))
	if string(b) != "x\n" || string(v) != "v\n" {
		t.Errorf("skel: %q %q", b, v)
	}
	if created, _ := CreateHome(r, "/home/a", 0, 0, 0o700, nil); created {
		t.Error("existing home recreated")
	}
}

// The skeleton is read once for all the homes of a run, and read again
// after a change to it through the Root or after Forget (a program ran).
func TestCreateHomeReadsSkeletonOnce(t *testing.T) {
	r := newRoot(t, map[string]string{"etc/skel/.bashrc": "one\n", "etc/skel/.config/app/rc": "nested\n"})
	if err := os.Symlink(".bashrc", filepath.Join(r.Dir, "etc/skel/.bash_profile")); err != nil {
		t.Fatal(err)
	}
	skel := []string{"/etc/skel"}
	home := func(name, want string) {
		t.Helper()
		if created, err := CreateHome(r, "/home/"+name, os.Getuid(), os.Getgid(), 0o700, skel); err != nil || !created {
			t.Fatal(created, err)
		}
		if b, err := os.ReadFile(filepath.Join(r.Dir, "home", name, ".bashrc")); err != nil || string(b) != want {
			t.Errorf("%s's .bashrc = %q, %v; want %q", name, b, err, want)
		}
		if b, err := os.ReadFile(filepath.Join(r.Dir, "home", name, ".config/app/rc")); err != nil || string(b) != "nested\n" {
			t.Errorf("%s's nested file = %q, %v", name, b, err)
		}
		if l, err := os.Readlink(filepath.Join(r.Dir, "home", name, ".bash_profile")); err != nil || l != ".bashrc" {
			t.Errorf("%s's symlink = %q, %v", name, l, err)
		}
	}
	home("a", "one\n")
	// Behind the Root's back, as a program would, without Forget: the
	// skeleton read for the first home serves the second.
	if err := os.WriteFile(filepath.Join(r.Dir, "etc/skel/.bashrc"), []byte("two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	home("b", "one\n")
	r.Forget()
	home("c", "two\n")
	if err := r.WriteFile("/etc/skel/.bashrc", []byte("three\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	home("d", "three\n")
	if err := r.WriteFile("/etc/skel/.config/app/rc", []byte("nested\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteFile("/etc/skel/.bashrc", []byte("four\n"), 0o644, rootfs.RootOwner); err != nil {
		t.Fatal(err)
	}
	home("e", "four\n")
}

func TestCrypt(t *testing.T) {
	h, err := HashPassword(DefaultHashMethod, "pw")
	if err != nil || !strings.HasPrefix(h, "$6$") || len(strings.Split(h, "$")[2]) != 16 {
		t.Fatalf("%q %v", h, err)
	}
	if !VerifyPassword(h, "pw") || VerifyPassword(h, "nope") {
		t.Error("verify")
	}
	// Unknown schemes must not panic.
	for _, x := range []string{"$y$j9T$a$b", "!", "", "*", "$2b$10$abc"} {
		if VerifyPassword(x, "pw") {
			t.Errorf("%q verified", x)
		}
	}
}
