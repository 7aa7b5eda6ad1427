package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// manifest lists a tree: path, type, mode, owner (when root), and the
// content or link target. Hard links show their link count.
func manifest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		st, _ := os.Lstat(p)
		sys := st.Sys().(*syscall.Stat_t)
		owner := ""
		if os.Geteuid() == 0 {
			owner = fmt.Sprintf(" %d:%d", sys.Uid, sys.Gid)
		}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(&b, "/%s l%s -> %s\n", rel, owner, target)
		case st.IsDir():
			fmt.Fprintf(&b, "/%s d %s%s\n", rel, fmtMode(st.Mode()), owner)
		default:
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "/%s f %s%s nlink=%d %q\n", rel, fmtMode(st.Mode()), owner, sys.Nlink, data)
		}
		return nil
	})
	return b.String()
}

func origin(line int) config.Origin {
	return config.Origin{Source: "test", File: "user-data", Line: line, Column: 5}
}

func mode(m fs.FileMode) *fs.FileMode { return &m }
func boolp(b bool) *bool              { return &b }

const passwd = "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n"
const group = "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\n"

func sha(algo string, data string) string {
	if algo == "sha256" {
		s := sha256.Sum256([]byte(data))
		return "sha256-" + hex.EncodeToString(s[:])
	}
	s := sha512.Sum512([]byte(data))
	return "sha512-" + hex.EncodeToString(s[:])
}

// fakeFetch serves a fixed set of URLs.
func fakeFetch(pages map[string]string) FetchFunc {
	return func(ctx context.Context, u string, _ http.Header) ([]byte, error) {
		if b, ok := pages[u]; ok {
			return []byte(b), nil
		}
		return nil, fmt.Errorf("GET %s: 404 Not Found", u)
	}
}

func sampleConfig() *config.Config {
	return &config.Config{
		Users: []config.User{{Origin: origin(1), Name: "bob"}},
		Files: []config.File{
			{Origin: origin(10), Path: "/etc/motd", Contents: []byte("hello\n")},
			{Origin: origin(11), Path: "/usr/local/bin/tool", Contents: []byte("#!/bin/sh\n"), Mode: mode(0o4750), Owner: "alice:wheel"},
			{Origin: origin(12), Path: "/etc/append.conf", Contents: []byte("b\n"), Append: true},
			{Origin: origin(13), Path: "/etc/new-append", Contents: []byte("first\n"), Append: true, Mode: mode(0o600)},
			{Origin: origin(14), Path: "/etc/data-plain", Source: "data:,hello%20world%0A"},
			{Origin: origin(15), Path: "/etc/data-b64", Source: "data:text/plain;charset=utf-8;base64,aGVsbG8K", Hash: sha("sha256", "hello\n")},
			{Origin: origin(16), Path: "/etc/remote", Source: "https://example.test/remote", Hash: sha("sha512", "remote body\n"), Owner: "1000", Group: "10"},
			{Origin: origin(17), Path: "/home/bob/note", Contents: []byte("for bob\n"), Owner: "bob", Group: "bob"},
			{Origin: origin(18), Path: "/etc/deferred", Contents: []byte("late\n"), Owner: "pkguser", Defer: true},
			{Origin: origin(19), Path: "/etc/keep", Mode: mode(0o640), Overwrite: boolp(false)},
			{Origin: origin(20), Path: "/etc/replaced-link", Contents: []byte("file now\n")},
		},
		Directories: []config.Directory{
			{Origin: origin(30), Path: "/srv/data/sub", Mode: mode(0o700)},
			{Origin: origin(31), Path: "/srv/data", Mode: mode(0o2770), Owner: "alice", Group: "wheel"},
			{Origin: origin(32), Path: "/srv/shared", Mode: mode(0o1777)},
		},
		Links: []config.Link{
			{Origin: origin(40), Path: "/etc/alias", Target: "../usr/local/bin/tool", Owner: "alice"},
			{Origin: origin(41), Path: "/usr/local/bin/tool2", Target: "/usr/local/bin/tool", Hard: true},
			{Origin: origin(42), Path: "/etc/abs", Target: "/etc/motd"},
		},
	}
}

func sampleRoot(t *testing.T) *rootfs.Root {
	root := rootfstest.NewRoot(t, map[string]string{
		"etc/passwd":        passwd,
		"etc/group":         group,
		"etc/append.conf":   "a\n",
		"etc/keep":          "keep me\n",
		"etc/replaced-link": "->/etc/passwd",
		"usr/local/bin/":    "",
		"tmp/":              "",
	})
	os.Chmod(filepath.Join(root.Dir, "etc/append.conf"), 0o600)
	return root
}

func TestPlanApply(t *testing.T) {
	root := sampleRoot(t)
	cfg := sampleConfig()
	p := Planner{Fetch: fakeFetch(map[string]string{"https://example.test/remote": "remote body\n"})}
	steps, err := p.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	deferred, err := p.PlanDeferred(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Golden(t, "plan.txt", append(rootfstest.PlanText(steps), rootfstest.PlanText(deferred)...))

	// The users module runs before files: bob exists by then.
	os.WriteFile(filepath.Join(root.Dir, "etc/passwd"), []byte(passwd+"bob:x:1001:1001::/home/bob:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root.Dir, "etc/group"), []byte(group+"bob:x:1001:\n"), 0o644)
	root.Forget() // written behind the Root's back, as a program would
	rootfstest.Apply(t, root, steps)
	// ... and a package creates pkguser before deferred files.
	os.WriteFile(filepath.Join(root.Dir, "etc/passwd"), []byte(passwd+"bob:x:1001:1001::/home/bob:/bin/sh\npkguser:x:990:990::/:/bin/false\n"), 0o644)
	root.Forget()
	rootfstest.Apply(t, root, deferred)

	name := "tree.txt"
	if os.Geteuid() != 0 {
		name = "tree-unprivileged.txt"
	}
	rootfstest.Golden(t, name, []byte(manifest(t, root.Dir)))

	// The setuid bit really is set (a FileMode flag, not the 0o4000 bit).
	st, _ := os.Stat(filepath.Join(root.Dir, "usr/local/bin/tool"))
	if st.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("tool is not setuid: %v", st.Mode())
	}
	// The symlink was replaced, not followed.
	if b, _ := os.ReadFile(filepath.Join(root.Dir, "etc/passwd")); bytes.Contains(b, []byte("file now")) {
		t.Error("write followed the symlink")
	}

	// A dry run against the result lists only what would still change:
	// appends always append.
	if os.Geteuid() == 0 {
		again, err := p.Plan(cfg, root)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range again {
			if s.Action != "append" && !strings.Contains(s.Target, "remote") {
				t.Errorf("unchanged item still planned: %s", s)
			}
		}
	}
}

func TestPlanWithoutRoot(t *testing.T) {
	p := Planner{Fetch: fakeFetch(nil)}
	steps, err := p.Plan(sampleConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Golden(t, "plan-noroot.txt", rootfstest.PlanText(steps))
}

func TestHostile(t *testing.T) {
	outside := t.TempDir()
	base := map[string]string{"etc/passwd": passwd, "etc/group": group}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	escape := "->" + strings.Repeat("../", 12) + strings.TrimPrefix(outside, "/")
	tests := []struct {
		name  string
		files map[string]string
		cfg   config.Config
		want  string
	}{
		{"dotdot in path", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/../../x", Contents: []byte("x")}}}, `contains ".."`},
		{"relative path", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "etc/x", Contents: []byte("x")}}}, "not absolute"},
		{"planted relative symlink", with(map[string]string{"opt": escape}), config.Config{Files: []config.File{{Origin: origin(3), Path: "/opt/evil", Contents: []byte("x")}}}, "escapes"},
		{"planted symlink, directory", with(map[string]string{"opt": escape}), config.Config{Directories: []config.Directory{{Origin: origin(3), Path: "/opt/d"}}}, "escapes"},
		{"planted symlink, link", with(map[string]string{"opt": escape}), config.Config{Links: []config.Link{{Origin: origin(3), Path: "/opt/l", Target: "/etc/passwd"}}}, "escapes"},
		{"hard link target escapes", with(map[string]string{"opt": escape}), config.Config{Links: []config.Link{{Origin: origin(3), Path: "/etc/l", Target: "/opt/secret", Hard: true}}}, "escapes"},
		{"hard link target missing", base, config.Config{Links: []config.Link{{Origin: origin(3), Path: "/etc/l", Target: "/nope", Hard: true}}}, "does not exist"},
		{"mode 9999", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Contents: []byte("x"), Mode: mode(9999)}}}, "invalid mode"},
		{"directory mode type bits", base, config.Config{Directories: []config.Directory{{Origin: origin(3), Path: "/etc/d", Mode: mode(fs.ModeDir | 0o755)}}}, "invalid mode"},
		{"unknown owner", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Owner: "mallory"}}}, `owner "mallory"`},
		{"unknown group", base, config.Config{Directories: []config.Directory{{Origin: origin(3), Path: "/etc/d", Owner: "alice:nogroup"}}}, `group "nogroup"`},
		{"owner and group disagree", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Owner: "alice:wheel", Group: "root"}}}, "disagree"},
		{"invalid owner name", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Owner: "a b"}}}, "invalid owner"},
		{"overwrite false", with(map[string]string{"etc/x": "old"}), config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Contents: []byte("new"), Overwrite: boolp(false)}}}, "overwrite is false"},
		{"link overwrite false", with(map[string]string{"etc/x": "old"}), config.Config{Links: []config.Link{{Origin: origin(3), Path: "/etc/x", Target: "y", Overwrite: boolp(false)}}}, "overwrite is false"},
		{"file over directory", with(map[string]string{"etc/d/": ""}), config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/d", Contents: []byte("x")}}}, "directory exists"},
		{"directory over file", with(map[string]string{"etc/x": "old"}), config.Config{Directories: []config.Directory{{Origin: origin(3), Path: "/etc/x"}}}, "not a directory"},
		{"data hash mismatch", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "data:,abc", Hash: sha("sha256", "abd")}}}, "hash mismatch"},
		{"bad hash spec", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "https://e.test/x", Hash: "md5-00"}}}, "unsupported function"},
		{"short hash", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "https://e.test/x", Hash: "sha256-abcd"}}}, "not a sha256 hex digest"},
		{"bad base64", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "data:;base64,!!!"}}}, "invalid base64"},
		{"unsupported scheme", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "tftp://h/x"}}}, "not supported"},
		{"s3 scheme", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "s3://bucket/x"}}}, "use a presigned https:// URL"},
		{"no scheme", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Source: "just-a-name"}}}, "no URL scheme"},
		// The API filesystems: the running kernel's and the host's while
		// provisioning, tmpfs at boot; refused by name, at plan time.
		{"sysctl via /proc", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/proc/sys/kernel/hostname", Contents: []byte("x")}}}, "/proc/sys/kernel/hostname is under /proc"},
		{"file in /sys", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/sys/kernel/x", Contents: []byte("x")}}}, "is under /sys"},
		{"device node", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/dev/sda", Contents: []byte("x"), Append: true}}}, "/dev/sda is under /dev"},
		{"directory in /dev/shm", base, config.Config{Directories: []config.Directory{{Origin: origin(3), Path: "/dev/shm/d"}}}, "is under /dev"},
		{"file in /tmp", base, config.Config{Files: []config.File{{Origin: origin(3), Path: "/tmp/x", Contents: []byte("x")}}}, "/tmp/x is under /tmp, a tmpfs"},
		{"link in /run", base, config.Config{Links: []config.Link{{Origin: origin(3), Path: "/run/l", Target: "/etc/passwd"}}}, "is under /run"},
		{"hard link to /proc", base, config.Config{Links: []config.Link{{Origin: origin(3), Path: "/etc/l", Target: "/proc/self/environ", Hard: true}}}, "is under /proc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := rootfstest.NewRoot(t, tc.files)
			before := manifest(t, root.Dir)
			p := Planner{Fetch: fakeFetch(nil)}
			steps, err := p.Plan(&tc.cfg, root)
			if err == nil {
				t.Fatalf("no error; steps %v", steps)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "test:user-data:3:5") {
				t.Errorf("error %q: want %q and the origin", err, tc.want)
			}
			if steps != nil {
				t.Errorf("steps with an error: %v", steps)
			}
			if after := manifest(t, root.Dir); after != before {
				t.Errorf("planning changed the tree:\n%s", after)
			}
			if entries, _ := os.ReadDir(outside); len(entries) != 0 {
				t.Errorf("written outside: %v", entries)
			}
		})
	}
}

// An absolute symlink planted in the target means a path inside the
// target (chroot semantics): the write lands in the root, never on the host.
func TestAbsoluteSymlinkStaysInside(t *testing.T) {
	outside := t.TempDir()
	root := rootfstest.NewRoot(t, map[string]string{"etc": "->" + outside})
	cfg := &config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/hostname", Contents: []byte("x\n")}}}
	steps, err := Planner{}.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Apply(t, root, steps)
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written on the host: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root.Dir, outside, "hostname")); err != nil {
		t.Errorf("not written inside the root: %v", err)
	}
}

func TestRemoteFailures(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/passwd": passwd, "etc/x": "old\n"})
	p := Planner{Fetch: fakeFetch(map[string]string{"https://e.test/x": "tampered\n"})}
	for _, f := range []config.File{
		{Origin: origin(3), Path: "/etc/x", Source: "https://e.test/x", Hash: sha("sha512", "expected\n")},
		{Origin: origin(3), Path: "/etc/x", Source: "https://e.test/missing"},
	} {
		steps, err := p.Plan(&config.Config{Files: []config.File{f}}, root)
		if err != nil {
			t.Fatal(err)
		}
		err = steps[0].Apply(context.Background(), &modules.Env{Root: root})
		if err == nil || !strings.Contains(err.Error(), "test:user-data:3:5") {
			t.Errorf("apply: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(root.Dir, "etc/x")); string(b) != "old\n" {
			t.Errorf("file changed to %q", b)
		}
	}
	if _, err := (Planner{}).Plan(&config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/y", Source: "https://e.test/x"}}}, root); err == nil {
		t.Error("remote source planned without a fetcher")
	}
}

func TestOverwriteFalseKeepsContent(t *testing.T) {
	root := rootfstest.NewRoot(t, map[string]string{"etc/passwd": passwd, "etc/x": "old\n"})
	cfg := &config.Config{Files: []config.File{{Origin: origin(3), Path: "/etc/x", Mode: mode(0o600), Overwrite: boolp(false)}}}
	steps, err := Planner{}.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	rootfstest.Apply(t, root, steps)
	rootfstest.Apply(t, root, steps) // idempotent
	st, _ := os.Stat(filepath.Join(root.Dir, "etc/x"))
	if b, _ := os.ReadFile(filepath.Join(root.Dir, "etc/x")); string(b) != "old\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("got %q %v", b, st.Mode())
	}
	// Same content with overwrite false is not an error either.
	cfg.Files[0].Contents = []byte("old\n")
	if _, err := (Planner{}).Plan(cfg, root); err != nil {
		t.Error(err)
	}
}

func TestDecodeDataURL(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"data:,hello", "hello", ""},
		{"DATA:,a%2Cb%0A", "a,b\n", ""},
		{"data:text/plain;base64,aGk=", "hi", ""},
		{"data:;base64,aGk", "hi", ""},
		{"data:;BASE64,aG k=\n", "hi", ""},
		{"data:;base64,aGk%3D", "hi", ""},
		{"data:text/plain;charset=base64,aGk=", "aGk=", ""},
		{"data:,", "", ""},
		{"data:hello", "", "without a comma"},
		{"data:,%zz", "", "invalid URL escape"},
		{"data:;base64,***", "", "invalid base64"},
		{"http://x", "", "not a data: URL"},
	}
	for _, tc := range tests {
		got, err := DecodeDataURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("DecodeDataURL(%q) err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("DecodeDataURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzDecodeDataURL(f *testing.F) {
	for _, s := range []string{"data:,hello", "data:;base64,aGk=", "data:text/plain;charset=utf-8;base64,aGVsbG8K", "data:,%zz", "data:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		data, err := DecodeDataURL(s)
		if err != nil {
			return
		}
		// Whatever decodes also decodes from the canonical base64 form.
		again, err := DecodeDataURL("data:;base64," + b64(data))
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip of %q: %q, %v", s, again, err)
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestUnixMode(t *testing.T) {
	for in, want := range map[fs.FileMode]fs.FileMode{
		0o644:  0o644,
		0o4755: fs.ModeSetuid | 0o755,
		0o2775: fs.ModeSetgid | 0o775,
		0o1777: fs.ModeSticky | 0o777,
	} {
		got, err := unixMode(in)
		if err != nil || got != want {
			t.Errorf("unixMode(%o) = %v, %v", in, got, err)
		}
		if fmtMode(got) != fmt.Sprintf("%04o", uint32(in)) {
			t.Errorf("fmtMode(%v) = %s", got, fmtMode(got))
		}
	}
	for _, bad := range []fs.FileMode{0o10000, 9999, fs.ModeSetuid | 0o755, fs.ModeDir} {
		if _, err := unixMode(bad); err == nil {
			t.Errorf("unixMode(%v) accepted", bad)
		}
	}
}
