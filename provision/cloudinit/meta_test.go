package cloudinit

import (
	"context"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

// TestMetaDocumentShape pins what each meta document may be: NoCloud
// meta-data and network-config may be empty or null, OpenStack's
// meta_data.json may not; a document that is not a mapping is an error
// naming the file.
func TestMetaDocumentShape(t *testing.T) {
	o := config.Origin{Source: "s"}
	for _, tc := range []struct {
		name    string
		set     func(b *Blob) DataSet
		data    string
		wantErr string // "" means no error
	}{
		{"meta-data empty", func(b *Blob) DataSet { return DataSet{MetaData: b} }, "", ""},
		{"meta-data null", func(b *Blob) DataSet { return DataSet{MetaData: b} }, "null\n", ""},
		{"meta-data list", func(b *Blob) DataSet { return DataSet{MetaData: b} }, "- a\n", "meta-data must be a mapping, got "},
		{"network-config empty", func(b *Blob) DataSet { return DataSet{NetworkConfig: b} }, "", ""},
		{"network-config null", func(b *Blob) DataSet { return DataSet{NetworkConfig: b} }, "null\n", ""},
		{"network-config string", func(b *Blob) DataSet { return DataSet{NetworkConfig: b} }, "x\n", "network-config must be a mapping, got "},
		{"meta_data.json empty", func(b *Blob) DataSet { return DataSet{OpenStackMetaData: b} }, "", "meta_data.json is empty"},
		{"meta_data.json null", func(b *Blob) DataSet { return DataSet{OpenStackMetaData: b} }, "null", "meta_data.json must be an object, got "},
		{"meta_data.json list", func(b *Blob) DataSet { return DataSet{OpenStackMetaData: b} }, "[1]", "meta_data.json must be an object, got "},
		{"meta_data.json ok", func(b *Blob) DataSet { return DataSet{OpenStackMetaData: b} }, `{"uuid": "i-1", "hostname": "h"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(context.Background(), tc.set(&Blob{Origin: o, Data: []byte(tc.data)}), Options{})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestMetaInstanceIDAndHostname: both meta formats give the instance ID and
// the hostname the same way; an empty instance ID is none.
func TestMetaInstanceIDAndHostname(t *testing.T) {
	o := config.Origin{Source: "s"}
	for _, tc := range []struct {
		name   string
		set    DataSet
		wantID string
	}{
		{"nocloud", DataSet{MetaData: &Blob{Origin: o, Data: []byte("instance-id: i-1\nlocal-hostname: h1\n")}}, "i-1"},
		{"nocloud underscores", DataSet{MetaData: &Blob{Origin: o, Data: []byte("instance_id: i-2\nlocal_hostname: h1\n")}}, "i-2"},
		{"nocloud empty id", DataSet{MetaData: &Blob{Origin: o, Data: []byte("instance-id: ''\nlocal-hostname: h1\n")}}, ""},
		{"openstack", DataSet{OpenStackMetaData: &Blob{Origin: o, Data: []byte(`{"uuid": "u-1", "hostname": "h1"}`)}}, "u-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(context.Background(), tc.set, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if cfg.InstanceID.Value != tc.wantID {
				t.Errorf("instance ID %q, want %q", cfg.InstanceID.Value, tc.wantID)
			}
			if cfg.System.Hostname.Value != "h1" {
				t.Errorf("hostname %q, want h1", cfg.System.Hostname.Value)
			}
		})
	}
}
