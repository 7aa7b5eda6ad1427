package configdrive_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
	"github.com/provision-dev/provision/sources/configdrive"
)

var tree = map[string]string{
	"openstack/latest/meta_data.json":     `{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"new"}`,
	"openstack/latest/user_data":          "#cloud-config\n",
	"openstack/latest/vendor_data.json":   `{"cloud-init":"#cloud-config\n"}`,
	"openstack/latest/vendor_data2.json":  `{}`,
	"openstack/latest/network_data.json":  `{"links":[]}`,
	"openstack/2012-08-10/meta_data.json": `{"uuid":"old"}`,
	"openstack/2012-08-10/user_data":      "old",
	"ec2/2009-04-04/meta-data.json":       `{}`,
}

const wantLatest = `configdrive:/dev/sr0|openstack/latest/meta_data.json|openstack-meta-data|{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"new"}
configdrive:/dev/sr0|openstack/latest/user_data|user-data|#cloud-config

configdrive:/dev/sr0|openstack/latest/vendor_data.json|vendor-data-json|{"cloud-init":"#cloud-config\n"}
configdrive:/dev/sr0|openstack/latest/vendor_data2.json|vendor-data2-json|{}
configdrive:/dev/sr0|openstack/latest/network_data.json|openstack-network-data|{"links":[]}
`

func TestConfigDriveISO(t *testing.T) {
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "cd.iso"), "config-2", tree, "-J", "-r")
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "vda"}, {Name: "sr0", Image: img}})
	s := &configdrive.Source{Env: blockdev.Env{Prefix: prefix}}
	if p := s.Detect(&sources.Facts{}); p != sources.Present {
		t.Fatalf("Detect = %v", p)
	}
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := blockdevtest.Summary(docs); got != wantLatest {
		t.Errorf("documents:\n%s\nwant:\n%s", got, wantLatest)
	}
}

func TestConfigDriveVFATDatedOnly(t *testing.T) {
	files := map[string]string{
		"openstack/2012-08-10/meta_data.json": `{"uuid":"old"}`,
		"openstack/2015-10-15/meta_data.json": `{"uuid":"newer"}`,
		"openstack/2015-10-15/user_data":      "ud",
		"openstack/content/0000":              "file",
	}
	img := blockdevtest.MakeFAT(t, filepath.Join(t.TempDir(), "cd.img"), blockdevtest.FAT{Label: "CONFIG-2", Bits: 12, SizeKiB: 1024, Files: files})
	docs, err := configdrive.ReadMedium(blockdevtest.OpenImage(t, img))
	if err != nil {
		t.Fatal(err)
	}
	want := "configdrive:" + img + "|openstack/2015-10-15/meta_data.json|openstack-meta-data|{\"uuid\":\"newer\"}\n" +
		"configdrive:" + img + "|openstack/2015-10-15/user_data|user-data|ud\n"
	if got := blockdevtest.Summary(docs); got != want {
		t.Errorf("documents:\n%s\nwant:\n%s", got, want)
	}
}

func TestMissingMetaData(t *testing.T) {
	img := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "cd.iso"), "config-2", map[string]string{"openstack/latest/user_data": "x"}, "-r")
	_, err := configdrive.ReadMedium(blockdevtest.OpenImage(t, img))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "openstack/latest/meta_data.json: required file is missing") {
		t.Errorf("err = %v", err)
	}
	img2 := blockdevtest.MakeISO(t, filepath.Join(t.TempDir(), "cd.iso"), "config-2", map[string]string{"openstack/README": "x"}, "-r")
	if _, err := configdrive.ReadMedium(blockdevtest.OpenImage(t, img2)); err == nil || !strings.Contains(err.Error(), "neither latest/ nor a dated version") {
		t.Errorf("no version dir: %v", err)
	}
}

func TestDetect(t *testing.T) {
	prefix := blockdevtest.FakeSysfs(t, []blockdevtest.Disk{{Name: "vda"}})
	s := &configdrive.Source{Env: blockdev.Env{Prefix: prefix}}
	// An OpenStack guest without a drive must not wait: it has the metadata service.
	if p := s.Detect(&sources.Facts{DMI: map[string]string{"product_name": "OpenStack Nova"}}); p != sources.Absent {
		t.Errorf("nova without drive: %v", p)
	}
	if p := s.Detect(&sources.Facts{Cmdline: []string{"ds=ConfigDrive"}}); p != sources.Maybe {
		t.Errorf("ds=ConfigDrive: %v", p)
	}
}
