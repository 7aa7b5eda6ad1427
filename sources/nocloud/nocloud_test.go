package nocloud_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/nocloud"
)

const (
	userData = "#cloud-config\nusers:\n  - name: alice\n"
	metaData = "instance-id: iid-local01\nlocal-hostname: seed\n"
	netCfg   = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n"
	vendor   = "#cloud-config\ntimezone: UTC\n"
)

// summary renders documents as "source|file|kind|data" lines for comparison.
func cloudLocalds(t testing.TB, dir string, vfat bool) string {
	t.Helper()
	blockdevtest.NeedTools(t, "cloud-localds")
	in := blockdevtest.WriteTree(t, filepath.Join(dir, "in"), map[string]string{"ud": userData, "md": metaData, "net": netCfg})
	img := filepath.Join(dir, "seed.img")
	args := []string{"--network-config", filepath.Join(in, "net")}
	if vfat {
		args = append(args, "-f", "vfat")
	}
	args = append(args, img, filepath.Join(in, "ud"), filepath.Join(in, "md"))
	blockdevtest.Run(t, "cloud-localds", args...)
	return img
}

func TestDriveCloudLocalds(t *testing.T) {
	for _, vfat := range []bool{false, true} {
		name := map[bool]string{false: "iso", true: "vfat"}[vfat]
		t.Run(name, func(t *testing.T) {
			img := cloudLocalds(t, t.TempDir(), vfat)
			prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "vda"}, {Name: "vdb", Image: img}})
			d := &nocloud.Drive{Env: blockdev.Env{Prefix: prefix}}
			if p := d.Detect(&sources.Facts{}); p != sources.Present {
				t.Fatalf("Detect = %v", p)
			}
			docs, err := d.Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := "nocloud:/dev/vdb|meta-data|meta-data|" + metaData + "\n" +
				"nocloud:/dev/vdb|user-data|user-data|" + userData + "\n" +
				"nocloud:/dev/vdb|network-config|network-config|" + netCfg + "\n"
			if got := blockdevtest.Summary(docs); got != want {
				t.Errorf("documents:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestGenisoimageSeed(t *testing.T) {
	dir := t.TempDir()
	img := blockdevtest.MakeISO(t, filepath.Join(dir, "seed.iso"), "CIDATA", map[string]string{
		"user-data": userData, "meta-data": metaData, "vendor-data": vendor,
	}, "-J", "-r")
	docs, err := nocloud.ReadMedium(blockdevtest.OpenImage(t, img))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 3 || docs[2].Kind != sources.KindVendorData || string(docs[2].Data) != vendor {
		t.Errorf("documents:\n%s", blockdevtest.Summary(docs))
	}
}

func TestMissingRequiredFile(t *testing.T) {
	for _, tc := range []struct {
		files   map[string]string
		missing string
	}{
		{map[string]string{"user-data": userData}, "meta-data is missing"},
		{map[string]string{"meta-data": metaData, "vendor-data": vendor}, "user-data is missing"},
		{map[string]string{"network-config": netCfg}, "meta-data and user-data are missing"},
	} {
		dir := blockdevtest.WriteTree(t, t.TempDir(), tc.files)
		_, err := nocloud.ReadFS(os.DirFS(dir), ".", "nocloud:test", 0)
		if !errors.Is(err, nocloud.ErrIncomplete) || !strings.Contains(err.Error(), tc.missing) {
			t.Errorf("%v: err = %v, want it to say %q", tc.files, err, tc.missing)
		}
	}
	_, err := nocloud.ReadFS(os.DirFS(t.TempDir()), ".", "nocloud:test", 0)
	if !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("empty dir: %v", err)
	}
}

func TestDetect(t *testing.T) {
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "vda"}, {Name: "vdb"}})
	d := &nocloud.Drive{Env: blockdev.Env{Prefix: prefix}}
	for _, tc := range []struct {
		facts sources.Facts
		want  sources.Presence
	}{
		{sources.Facts{}, sources.Absent},
		{sources.Facts{Cmdline: []string{"ds=nocloud"}}, sources.Maybe},
		{sources.Facts{Cmdline: []string{"ds=nocloud;h=host"}}, sources.Maybe},
		{sources.Facts{Cmdline: []string{"ds=nocloud;s=http://10.0.0.1/"}}, sources.Absent},
		{sources.Facts{DMI: map[string]string{"product_serial": "ds=nocloud"}}, sources.Maybe},
		{sources.Facts{Cmdline: []string{"provision.device_timeout=3"}}, sources.Maybe},
		{sources.Facts{Cmdline: []string{"provision.device_timeout=0"}}, sources.Absent},
	} {
		if got := d.Detect(&tc.facts); got != tc.want {
			t.Errorf("Detect(%+v) = %v, want %v", tc.facts, got, tc.want)
		}
	}
	// Absent: Fetch scans once and reports "not found" without waiting.
	d.Detect(&sources.Facts{})
	if _, err := d.Fetch(context.Background()); !errors.Is(err, sources.ErrNotFound) {
		t.Errorf("Fetch without a drive: %v", err)
	}
}

func TestSeedDir(t *testing.T) {
	root := t.TempDir()
	blockdevtest.WriteTree(t, root, map[string]string{
		"var/lib/cloud/seed/nocloud/user-data":     userData, // incomplete: skipped like cloud-init does
		"var/lib/cloud/seed/nocloud-net/user-data": userData,
		"var/lib/cloud/seed/nocloud-net/meta-data": metaData,
	})
	s := &nocloud.SeedDir{Root: root}
	if p := s.Detect(&sources.Facts{}); p != sources.Present {
		t.Fatalf("Detect = %v", p)
	}
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Origin.Source != "nocloud:/var/lib/cloud/seed/nocloud-net" {
		t.Errorf("documents:\n%s", blockdevtest.Summary(docs))
	}
	// Only the incomplete one: its error names the missing file.
	if err := os.RemoveAll(filepath.Join(root, "var/lib/cloud/seed/nocloud-net")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "meta-data is missing") {
		t.Errorf("incomplete seed: %v", err)
	}
	if p := (&nocloud.SeedDir{Root: t.TempDir()}).Detect(&sources.Facts{}); p != sources.Absent {
		t.Errorf("empty root: %v", p)
	}
}

// A symlink in the target's seed dir must not read the host's files.
func TestSeedDirSymlinkConfined(t *testing.T) {
	root := t.TempDir()
	blockdevtest.WriteTree(t, root, map[string]string{"var/lib/cloud/seed/nocloud/user-data": userData})
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(root, "var/lib/cloud/seed/nocloud/meta-data")); err != nil {
		t.Fatal(err)
	}
	docs, err := (&nocloud.SeedDir{Root: root}).Fetch(context.Background())
	if err == nil || strings.Contains(blockdevtest.Summary(docs), "host secret") {
		t.Errorf("escaping symlink followed: %v\n%s", err, blockdevtest.Summary(docs))
	}
}

func BenchmarkReadCloudLocaldsISO(b *testing.B) {
	img := cloudLocalds(b, b.TempDir(), false)
	ctx := context.Background()
	for b.Loop() {
		vols, err := blockdev.ScanImage(img)
		if err != nil {
			b.Fatal(err)
		}
		m, err := blockdev.Env{}.Open(ctx, vols[0])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := nocloud.ReadMedium(m); err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}
