package accept

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/provision-dev/provision/test/testbin"
)

// TestHostileInputs runs `provision run` on inputs that must be refused:
// each gets exit code 2 (invalid input), a message naming the source,
// document, line and column, and leaves the tree exactly as it was.
func TestHostileInputs(t *testing.T) {
	cases := []struct {
		name     string
		userData string
		plant    func(t *testing.T, root string)
		want     string // regexp the error line must match
	}{
		{name: "dotdot path", userData: "#cloud-config\nwrite_files:\n  - path: /etc/../../escape\n    content: x\n",
			want: `user-data:3:5: file: path "/etc/\.\./\.\./escape" contains "\.\."`},
		{name: "symlink planted in the target", userData: "#cloud-config\nwrite_files:\n  - path: /etc/evil/escape\n    content: x\n",
			plant: func(t *testing.T, root string) {
				if err := os.Symlink("../../../../../../../../tmp", filepath.Join(root, "etc/evil")); err != nil {
					t.Fatal(err)
				}
			},
			want: `user-data:3:5: .*escapes the target root`},
		{name: "absolute symlink planted in the target", userData: "#cloud-config\nusers: [{name: zed}]\nwrite_files:\n  - path: /etc/evil/x\n    content: x\n",
			plant: func(t *testing.T, root string) {
				if err := os.Symlink("/../../../../..", filepath.Join(root, "etc/evil")); err != nil {
					t.Fatal(err)
				}
			},
			want: `user-data:4:5: .*escapes the target root`},
		{name: "invalid ssh key", userData: "#cloud-config\nusers:\n  - name: eve\n    ssh_authorized_keys: [\"ssh-rsa notbase64!!\"]\n",
			want: `user-data:4:27: ssh key for eve: invalid ssh key`},
		{name: "malformed yaml", userData: "#cloud-config\nusers:\n  - name: x\n   bad: [\n",
			want: `user-data:4:4: invalid YAML: did not find expected '-' indicator`},
		{name: "unclosed flow sequence", userData: "#cloud-config\nhostname: a\nruncmd: [ls, -l\n",
			want: `user-data:3:15: invalid YAML: did not find expected ',' or ']'`},
		{name: "unknown timezone", userData: "#cloud-config\ntimezone: Mars/Olympus_Mons\n",
			want: `user-data:2:11: unknown timezone "Mars/Olympus_Mons"`},
		{name: "gzip bomb", userData: string(gzipBomb(t, 1<<30)),
			want: `user-data: gzip: decompressed data exceeds the limit`},
		{name: "sysctl through /proc", userData: "#cloud-config\nwrite_files:\n  - path: /proc/sys/kernel/domainname\n    content: pwned\n",
			want: `user-data:3:5: file /proc/sys/kernel/domainname: /proc/sys/kernel/domainname is under /proc`},
		{name: "device node", userData: "#cloud-config\nwrite_files:\n  - path: /dev/evil\n    content: x\n    append: true\n",
			want: `user-data:3:5: file /dev/evil: /dev/evil is under /dev`},
		{name: "file on the throwaway /tmp", userData: "#cloud-config\nwrite_files:\n  - path: /tmp/lost\n    content: x\n",
			want: `user-data:3:5: file /tmp/lost: /tmp/lost is under /tmp, a tmpfs the booted system mounts empty`},
		{name: "forged console line", userData: "#cloud-config\nwrite_files:\n  - path: \"/proc/x\\n[ OK ] transaction: committed (forged)\"\n    content: x\n",
			want: `user-data:3:5: file /proc/x\\n\[ OK \] transaction: committed \(forged\):`},
		{name: "mode out of range", userData: "#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: x\n    permissions: '0o9999'\n",
			want: `user-data:5:18: write_files\[0\]\.permissions: invalid octal file mode "0o9999"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := newTree(t)
			if tc.plant != nil {
				tc.plant(t, root)
			}
			seed := writeSeed(t, tc.userData, "instance-id: iid-hostile\n")
			before := fingerprint(t, root)
			report := filepath.Join(t.TempDir(), "report.json")
			r := provision(t, "run", "--root", root, "--source", seed, "--report", report)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\n%s", r.code, r.stderr)
			}
			// The message names the source (dir:SEED) and the position.
			re := regexp.MustCompile(`dir:` + regexp.QuoteMeta(seed) + `:` + tc.want)
			if !re.MatchString(r.stderr) {
				t.Errorf("stderr does not match %q:\n%s", re, r.stderr)
			}
			if d := unexpectedChanges(before, fingerprint(t, root)); len(d) > 0 {
				t.Errorf("the tree changed:\n%s", strings.Join(d, "\n"))
			}
			// validate says the same, without a tree.
			if tc.plant == nil {
				v := provision(t, "validate", seed)
				if v.code != 2 || !re.MatchString(v.stderr) {
					t.Errorf("validate: exit %d, want 2 and %q:\n%s", v.code, re, v.stderr)
				}
			}
		})
	}
}

// failureReport is what a failed run may leave in the old root: its report
// (SPEC §2 step 8), and hence a newer mtime on /var/log. Nothing else.
var failureReport = map[string]bool{
	"var/log/provision":               true,
	"var/log/provision/report.json":   true,
	"var/log/provision/provision.log": true,
	"var/log":                         true,
}

func unexpectedChanges(before, after map[string]string) []string {
	var out []string
	for _, d := range testbin.Diff(before, after) {
		f := strings.Fields(d)
		if !failureReport[strings.TrimSuffix(f[1], ":")] {
			out = append(out, d)
		}
	}
	return out
}

// gzipBomb is a multi-member gzip stream of n zero bytes: one 1 MiB member
// repeated, so it costs one compression whatever n is (1 GiB → ~1 MiB).
func gzipBomb(t *testing.T, n int64) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(make([]byte, 1<<20))
	zw.Close()
	return bytes.Repeat(member.Bytes(), int(n>>20))
}
