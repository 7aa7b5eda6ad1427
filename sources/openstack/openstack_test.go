package openstack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

func serve(t *testing.T, files map[string]string) *Source {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if b == "500" {
			w.WriteHeader(500)
			return
		}
		io.WriteString(w, b)
	}))
	t.Cleanup(srv.Close)
	s := New(srv.URL)
	s.Client = fetch.New("openstack", fetch.Options{RequestTimeout: time.Second, Deadline: 3 * time.Second, Retries: 2, Backoff: time.Millisecond})
	return s
}

func TestLatestLayout(t *testing.T) {
	s := serve(t, map[string]string{
		"/openstack":                           "2012-08-10\n2013-04-04\n2018-08-27\nlatest\n",
		"/openstack/latest/meta_data.json":     `{"uuid":"83679162-1378-4288-a2d4-70e13ec132aa","hostname":"test"}`,
		"/openstack/latest/user_data":          "#cloud-config\n{}\n",
		"/openstack/latest/vendor_data.json":   `{"cloud-init":"#cloud-config\n{}"}`,
		"/openstack/latest/vendor_data2.json":  `{}`,
		"/openstack/latest/network_data.json":  `{"links":[]}`,
		"/openstack/2018-08-27/meta_data.json": `{"wrong":"version"}`,
	})
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[sources.Kind]string{}
	for _, d := range docs {
		got[d.Kind] = d.Origin.File
		if !strings.HasPrefix(d.Origin.Source, "openstack:http://127.0.0.1:") {
			t.Errorf("origin %+v", d.Origin)
		}
	}
	want := map[sources.Kind]string{
		sources.KindOpenStackMetaData:    "openstack/latest/meta_data.json",
		sources.KindUserData:             "openstack/latest/user_data",
		sources.KindVendorDataJSON:       "openstack/latest/vendor_data.json",
		sources.KindVendorData2JSON:      "openstack/latest/vendor_data2.json",
		sources.KindOpenStackNetworkData: "openstack/latest/network_data.json",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q want %q", k, got[k], v)
		}
	}
}

func TestOptionalMissingAndNewestKnown(t *testing.T) {
	s := serve(t, map[string]string{
		"/openstack":                           "2012-08-10\n2016-06-30\n",
		"/openstack/2016-06-30/meta_data.json": `{"uuid":"x"}`,
	})
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || docs[0].Origin.File != "openstack/2016-06-30/meta_data.json" {
		t.Fatalf("got %+v", docs)
	}
}

func TestMetaDataRequired(t *testing.T) {
	s := serve(t, map[string]string{"/openstack": "latest\n", "/openstack/latest/user_data": "x"})
	_, err := s.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "meta_data.json is missing") {
		t.Fatalf("got %v", err)
	}
}

func TestServerError(t *testing.T) {
	s := serve(t, map[string]string{"/openstack": "latest\n", "/openstack/latest/meta_data.json": "500"})
	_, err := s.Fetch(context.Background())
	if err == nil || errors.Is(err, sources.ErrNotFound) || !strings.Contains(err.Error(), "500") {
		t.Fatalf("got %v", err)
	}
}

func TestPickVersion(t *testing.T) {
	cases := []struct {
		listed []string
		want   string
	}{
		{nil, "latest"},
		{[]string{"latest"}, "latest"},
		{[]string{"2012-08-10", "2013-04-04"}, "2013-04-04"},
		{[]string{"2012-08-10", "2099-01-01"}, "2012-08-10"},
		{[]string{"2099-01-01", "2098-01-01"}, "2099-01-01"},
		{[]string{"<html>", "garbage"}, "latest"},
	}
	for _, c := range cases {
		if got := pickVersion(c.listed); got != c.want {
			t.Errorf("%v: got %s want %s", c.listed, got, c.want)
		}
	}
}

func TestOnOpenStack(t *testing.T) {
	cases := []struct {
		dmi  map[string]string
		want bool
	}{
		{map[string]string{"product_name": "OpenStack Nova"}, true},
		{map[string]string{"product_name": "OpenStack Compute"}, true},
		{map[string]string{"chassis_asset_tag": "HUAWEICLOUD"}, true},
		{map[string]string{"chassis_asset_tag": "OpenTelekomCloud"}, true},
		{map[string]string{"chassis_asset_tag": "SAP CCloud VM"}, true},
		{map[string]string{"chassis_asset_tag": "Samsung Cloud Platform"}, true},
		{map[string]string{"chassis_asset_tag": "OpenStack Nova"}, true},
		{map[string]string{"product_name": "HUAWEICLOUD"}, false},
		{map[string]string{"product_name": "Standard PC (Q35 + ICH9, 2009)"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got, _ := OnOpenStack(&sources.Facts{DMI: c.dmi}); got != c.want {
			t.Errorf("%v: got %v", c.dmi, got)
		}
	}
}
