package dir

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSymlinkOutOfSeedRefused: a seed file that is a symlink to a file
// outside the directory (a host's /etc/shadow) is never read; the error
// names the file. A symlink inside the directory still works.
func TestSymlinkOutOfSeedRefused(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("#cloud-config\nroot:$6$secret:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, link, target string
	}{
		{"user-data absolute", "user-data", secret},
		{"user-data relative", "user-data", "../../../../../../../.." + secret},
		{"meta-data", "meta-data", secret},
		{"combustion script", "combustion/script", secret},
		{"configdrive", "openstack/latest/user_data", secret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := t.TempDir()
			files := map[string]string{}
			switch {
			case strings.HasPrefix(tc.link, "openstack"):
				files["openstack/latest/meta_data.json"] = `{"uuid": "x"}`
			case tc.link == "combustion/script":
				files["combustion/other"] = "x"
			case tc.link == "meta-data":
				files["user-data"] = "#cloud-config\n"
			default:
				files["meta-data"] = "instance-id: x\n"
			}
			write(t, seed, files)
			link := filepath.Join(seed, tc.link)
			os.MkdirAll(filepath.Dir(link), 0o755)
			if err := os.Symlink(tc.target, link); err != nil {
				t.Fatal(err)
			}
			docs, err := New(seed).Fetch(context.Background())
			for _, d := range docs {
				if strings.Contains(string(d.Data), "secret") {
					t.Fatalf("%s: the host file was read", d.Origin.File)
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.link) {
				t.Fatalf("want an error naming %s, got %v", tc.link, err)
			}
		})
	}
	seed := t.TempDir()
	write(t, seed, map[string]string{"real": "#cloud-config\nhostname: in\n", "meta-data": "instance-id: x\n"})
	os.Symlink("real", filepath.Join(seed, "user-data"))
	docs, err := New(seed).Fetch(context.Background())
	if err != nil || len(docs) != 2 {
		t.Fatalf("a symlink inside the seed: %v %d docs", err, len(docs))
	}
}
