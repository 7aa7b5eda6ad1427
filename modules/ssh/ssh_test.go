package ssh

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

func pubkey(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

const passwd = "root:x:0:0:root:/root:/bin/bash\n" +
	"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
const group = "root:x:0:\nalice:x:1000:\n"

func origin(line int) config.Origin {
	return config.Origin{Source: "test", File: "user-data", Line: line, Column: 3}
}

func TestCheckKeyLine(t *testing.T) {
	ed := pubkey(t, "ed.pub")
	rsa1024 := pubkey(t, "rsa1024.pub")
	rsa3072 := pubkey(t, "rsa3072.pub")
	edBlob := strings.Fields(ed)[1]
	tests := []struct {
		name    string
		line    string
		typ     string
		bits    int
		warn    string
		options bool
		err     string
	}{
		{"ed25519", ed, "ssh-ed25519", 0, "", false, ""},
		{"ecdsa", pubkey(t, "ec.pub"), "ecdsa-sha2-nistp256", 0, "", false, ""},
		{"rsa3072", rsa3072, "ssh-rsa", 3072, "", false, ""},
		{"rsa1024 warns", rsa1024, "ssh-rsa", 1024, "only 1024 bits", false, ""},
		{"options", `from="10.0.0.0/8",no-pty,command="echo \"hi there\"" ` + ed, "ssh-ed25519", 0, "", true, ""},
		{"surrounding space", "  " + ed + "\t", "ssh-ed25519", 0, "", false, ""},
		{"no comment", "ssh-ed25519 " + edBlob, "ssh-ed25519", 0, "", false, ""},
		{"empty", "", "", 0, "", false, "empty"},
		{"comment", "# " + ed, "", 0, "", false, "comment"},
		{"garbage", "hello world", "", 0, "", false, "invalid ssh key"},
		{"truncated blob", "ssh-ed25519 " + edBlob[:30], "", 0, "", false, "invalid ssh key"},
		{"type mismatch", "ssh-rsa " + edBlob + " x", "", 0, "", false, "invalid ssh key"},
		{"two keys", ed + "\n" + rsa3072, "", 0, "", false, "single line"},
		{"CR", ed + "\r", "", 0, "", false, "single line"},
		{"NUL", ed + "\x00", "", 0, "", false, "single line"},
		{"unmatched quote", `command="x ` + ed, "", 0, "", false, "invalid ssh key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := CheckKeyLine(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Type != tc.typ || info.Bits != tc.bits || info.HasOptions != tc.options {
				t.Errorf("got %+v", info)
			}
			if (tc.warn == "") != (info.Warning == "") || !strings.Contains(info.Warning, tc.warn) {
				t.Errorf("warning = %q, want %q", info.Warning, tc.warn)
			}
			if !strings.HasPrefix(info.Fingerprint, "SHA256:") {
				t.Errorf("fingerprint %q", info.Fingerprint)
			}
		})
	}
	if got := func() string { i, _ := CheckKeyLine(ed); return i.Fingerprint }(); got != "SHA256:6p/E5m+cRKJHU2Te74EDu7+KqoM3UvWuZEdy42o3pww" {
		t.Errorf("fingerprint %s differs from ssh-keygen -l", got)
	}
}

func TestComposeLine(t *testing.T) {
	ed := pubkey(t, "ed.pub")
	prefix := `no-port-forwarding,command="echo 'Please login as the user \"alice\" rather than the user \"root\".';echo;sleep 10;exit 142"`
	tests := []struct{ prefix, key, want string }{
		{"", "  " + ed + " ", ed},
		{prefix, ed, prefix + " " + ed},
		{prefix + " ", "no-pty " + ed, prefix + ",no-pty " + ed},
	}
	for _, tc := range tests {
		info, err := CheckKeyLine(tc.key)
		if err != nil {
			t.Fatal(err)
		}
		got := composeLine(tc.prefix, tc.key, info.HasOptions)
		if got != tc.want {
			t.Errorf("composeLine(%q, %q) = %q, want %q", tc.prefix, tc.key, got, tc.want)
		}
		if _, err := CheckKeyLine(got); err != nil {
			t.Errorf("composed line does not parse: %v", err)
		}
	}
}

func statOwner(t *testing.T, host string) (perm fs.FileMode, uid, gid int) {
	t.Helper()
	st, err := os.Lstat(host)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return st.Mode().Perm(), int(sys.Uid), int(sys.Gid)
}

func TestAuthorizedKeysMerge(t *testing.T) {
	ed, rsa1024, rsa3072 := pubkey(t, "ed.pub"), pubkey(t, "rsa1024.pub"), pubkey(t, "rsa3072.pub")
	edBlob := strings.Fields(ed)[1]
	// The existing file has the ed25519 key with another comment, a comment
	// line and a line no parser accepts: all kept as they are.
	existing := "# keys managed by hand\n" +
		"ssh-ed25519 " + edBlob + " old-comment\n" +
		"this is not a key\n" +
		"no-pty " + pubkey(t, "ec.pub") // no final newline
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/passwd":                      passwd,
		"etc/group":                       group,
		"home/alice/.ssh/authorized_keys": existing,
	})
	prefix := `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo 'Please login as the user \"alice\" rather than the user \"root\".';echo;sleep 10;exit 142"`
	cfg := &config.Config{SSHKeys: []config.AuthorizedKey{
		{Origin: origin(3), User: "alice", Key: ed},
		{Origin: origin(4), User: "alice", Key: `from="192.0.2.0/24" ` + rsa3072},
		{Origin: origin(5), User: "alice", Key: rsa1024},
		{Origin: origin(6), User: "alice", Key: rsa3072 + " same-key-other-comment"},
		{Origin: origin(7), User: "root", Key: ed, Prefix: prefix},
	}}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("want 2 steps, got %v", steps)
	}
	if steps[0].Target != "/home/alice/.ssh/authorized_keys" || !strings.Contains(steps[0].Detail, "2 keys for alice") ||
		!strings.Contains(steps[0].Detail, "1 already present") || !strings.Contains(steps[0].Detail, "test:user-data:5:3: warning: RSA key") {
		t.Errorf("alice step: %s", steps[0])
	}
	if steps[1].Target != "/root/.ssh/authorized_keys" || !strings.Contains(steps[1].Detail, "refusal prefix") {
		t.Errorf("root step: %s", steps[1])
	}
	console := rootfstest.Apply(t, root, steps)
	if !strings.Contains(console, "only 1024 bits") {
		t.Errorf("console lacks the weak-key warning: %q", console)
	}
	for _, f := range []struct{ path, golden string }{
		{"home/alice/.ssh/authorized_keys", "authorized_keys.alice"},
		{"root/.ssh/authorized_keys", "authorized_keys.root"},
	} {
		got, err := os.ReadFile(filepath.Join(root.Dir, f.path))
		if err != nil {
			t.Fatal(err)
		}
		rootfstest.Golden(t, f.golden, got)
	}
	for _, c := range []struct {
		path     string
		perm     fs.FileMode
		uid, gid int
	}{
		{"home/alice/.ssh", 0o700, 1000, 1000},
		{"home/alice/.ssh/authorized_keys", 0o600, 1000, 1000},
		{"root/.ssh", 0o700, 0, 0},
		{"root/.ssh/authorized_keys", 0o600, 0, 0},
	} {
		perm, uid, gid := statOwner(t, filepath.Join(root.Dir, c.path))
		if perm != c.perm {
			t.Errorf("%s: mode %o, want %o", c.path, perm, c.perm)
		}
		if os.Geteuid() == 0 && (uid != c.uid || gid != c.gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", c.path, uid, gid, c.uid, c.gid)
		}
	}

	// Applying again adds nothing, and a dry run against the result is empty.
	rootfstest.Apply(t, root, steps)
	got, _ := os.ReadFile(filepath.Join(root.Dir, "home/alice/.ssh/authorized_keys"))
	rootfstest.Golden(t, "authorized_keys.alice", got)
	if os.Geteuid() == 0 {
		again, err := Plan(cfg, root)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != 0 {
			t.Errorf("plan after apply should be empty, got %v", again)
		}
	}
}

func TestUserCreatedByConfig(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/passwd": passwd, "etc/group": group})
	cfg := &config.Config{
		Users:   []config.User{{Origin: origin(2), Name: "bob"}, {Origin: origin(8), Name: "carol", HomeDir: "/var/lib/carol"}},
		SSHKeys: []config.AuthorizedKey{{Origin: origin(3), User: "bob", Key: pubkey(t, "ed.pub")}, {Origin: origin(9), User: "carol", Key: pubkey(t, "ed.pub")}},
	}
	steps, err := Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].Target != "/home/bob/.ssh/authorized_keys" || !strings.Contains(steps[0].Detail, "created by this config") ||
		steps[1].Target != "/var/lib/carol/.ssh/authorized_keys" {
		t.Fatalf("steps: %v", steps)
	}
	// Applying before the users module created bob fails cleanly.
	err = steps[0].Apply(context.Background(), &modules.Env{Root: root})
	if err == nil || !strings.Contains(err.Error(), "test:user-data:3:3") {
		t.Fatalf("apply without the user: %v", err)
	}
	// What the users module would have done: bob exists in the TARGET with a
	// home that differs from the planned default. The target wins.
	os.WriteFile(filepath.Join(root.Dir, "etc/passwd"), []byte(passwd+"bob:x:1001:1001::/srv/bob:/bin/sh\n"), 0o644)
	root.Forget() // written behind the Root's back, as a program would
	if err := steps[0].Apply(context.Background(), &modules.Env{Root: root}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root.Dir, "srv/bob/.ssh/authorized_keys")); err != nil {
		t.Error(err)
	}
}

func TestPlanErrors(t *testing.T) {
	ed := pubkey(t, "ed.pub")
	tests := []struct {
		name  string
		files map[string]string
		keys  []config.AuthorizedKey
		want  []string
	}{
		{"invalid key", map[string]string{"etc/passwd": passwd},
			[]config.AuthorizedKey{{Origin: origin(12), User: "alice", Key: "ssh-ed25519 AAAAnotakey alice"}},
			[]string{"test:user-data:12:3", "invalid ssh key"}},
		{"all invalid keys reported", map[string]string{"etc/passwd": passwd},
			[]config.AuthorizedKey{{Origin: origin(12), User: "alice", Key: "bad one"}, {Origin: origin(13), User: "alice", Key: "bad two"}},
			[]string{"test:user-data:12:3", "test:user-data:13:3"}},
		{"unknown user", map[string]string{"etc/passwd": passwd},
			[]config.AuthorizedKey{{Origin: origin(4), User: "mallory", Key: ed}},
			[]string{"test:user-data:4:3", `"mallory"`, "not created by this config"}},
		{"host user is not a target user", map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"},
			[]config.AuthorizedKey{{Origin: origin(4), User: "daemon", Key: ed}},
			[]string{"test:user-data:4:3", `"daemon"`}},
		{"broken prefix", map[string]string{"etc/passwd": passwd},
			[]config.AuthorizedKey{{Origin: origin(5), User: "root", Key: ed, Prefix: `command="unterminated`}},
			[]string{"test:user-data:5:3", "prefix"}},
		{"invalid user name", map[string]string{"etc/passwd": passwd},
			[]config.AuthorizedKey{{Origin: origin(6), User: "../etc", Key: ed}},
			[]string{"test:user-data:6:3", "invalid user name"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, tc.files)
			steps, err := Plan(&config.Config{SSHKeys: tc.keys}, root)
			if err == nil {
				t.Fatalf("no error; steps %v", steps)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if steps != nil {
				t.Errorf("steps returned with an error: %v", steps)
			}
		})
	}
}

func TestHostileHome(t *testing.T) {
	ed := pubkey(t, "ed.pub")
	outside := t.TempDir()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		// A home that climbs out of the root through a relative symlink.
		{"home symlink escapes", map[string]string{"etc/passwd": passwd, "home/alice": "->../../../../../../../.." + outside}, "escapes"},
		// ~/.ssh planted as a symlink to a root-owned directory.
		{"ssh dir symlink", map[string]string{"etc/passwd": passwd, "home/alice/.ssh": "->/etc", "etc/": ""}, "symbolic link"},
		{"authorized_keys symlink", map[string]string{"etc/passwd": passwd, "home/alice/.ssh/authorized_keys": "->/etc/shadow", "etc/shadow": "root:*:1::::::\n"}, "symbolic link"},
		// "/.." is "/" inside a chroot: the key lands inside the root.
		{"home with dotdot", map[string]string{"etc/passwd": "alice:x:1000:1000::/../../../" + outside + ":/bin/sh\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, tc.files)
			cfg := &config.Config{SSHKeys: []config.AuthorizedKey{{Origin: origin(3), User: "alice", Key: ed}}}
			steps, err := Plan(cfg, root)
			if err == nil {
				err = steps[0].Apply(context.Background(), &modules.Env{Root: root})
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(root.Dir, outside, ".ssh/authorized_keys")); err != nil {
					t.Errorf("key not written inside the root: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test:user-data:3:3") {
				t.Fatalf("err = %v, want %q with origin", err, tc.want)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("something was written outside the root: %v", entries)
			}
			if b, _ := os.ReadFile(filepath.Join(root.Dir, "etc/shadow")); len(b) > 0 && string(b) != "root:*:1::::::\n" {
				t.Errorf("shadow changed: %q", b)
			}
			if _, err := os.Stat(filepath.Join(root.Dir, "etc/authorized_keys")); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("wrote through the .ssh symlink")
			}
		})
	}
}

func TestPlanWithoutRoot(t *testing.T) {
	cfg := &config.Config{
		SSHKeys:   []config.AuthorizedKey{{Origin: origin(3), User: "alice", Key: pubkey(t, "ed.pub")}, {Origin: origin(4), User: "root", Key: pubkey(t, "ed.pub")}},
		SSHPwauth: &config.BoolSetting{Value: true, Origin: origin(9)},
	}
	steps, err := Plan(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range steps {
		lines = append(lines, s.String())
	}
	rootfstest.Golden(t, "plan-noroot.txt", []byte(strings.Join(lines, "\n")+"\n"))
}

func FuzzCheckKeyLine(f *testing.F) {
	for _, n := range []string{"ed.pub", "rsa1024.pub", "rsa3072.pub", "ec.pub"} {
		k := pubkey(f, n)
		f.Add(k)
		f.Add(`no-pty,command="a \"b\" c" ` + k)
	}
	f.Add("")
	f.Add(`"`)
	f.Add("ssh-rsa AAAA")
	f.Fuzz(func(t *testing.T, line string) {
		info, err := CheckKeyLine(line)
		if err != nil {
			return
		}
		if strings.ContainsAny(line, "\r\n\x00") {
			t.Fatalf("accepted a multi-line input %q", line)
		}
		// A valid line stays valid with the refusal prefix, and names the
		// same key.
		composed := composeLine(`no-pty,command="echo no"`, line, info.HasOptions)
		again, err := CheckKeyLine(composed)
		if err != nil {
			t.Fatalf("composed %q: %v", composed, err)
		}
		if again.id != info.id {
			t.Fatalf("prefix changed the key")
		}
		data, added := mergeKeys([]byte(line), []string{line}, []KeyInfo{info})
		if added != 0 || string(data) != strings.TrimSuffix(line, "\n")+"\n" {
			t.Fatalf("merge of a present key changed the file: %q", data)
		}
	})
}
