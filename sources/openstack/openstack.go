// Package openstack reads the OpenStack metadata service
// (http://169.254.169.254/openstack/<version>/...). It is tried only when
// DMI says the machine is an OpenStack guest (see OnOpenStack) and no config
// drive was found: a config drive carries the same data without the network.
package openstack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

// DefaultURL is where the metadata service lives.
const DefaultURL = "http://169.254.169.254"

// knownVersions are the metadata API versions cloud-init knows, oldest first.
var knownVersions = []string{
	"2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15",
	"2016-06-30", "2016-10-06", "2017-02-22", "2018-08-27",
}

// productNames and assetTags are cloud-init's DMI markers of an OpenStack
// guest (DataSourceOpenStack VALID_DMI_PRODUCT_NAMES / VALID_DMI_ASSET_TAGS).
var (
	productNames = []string{"OpenStack Nova", "OpenStack Compute"}
	assetTags    = append(slices.Clone(productNames), "HUAWEICLOUD", "OpenTelekomCloud", "SAP CCloud VM", "Samsung Cloud Platform")
)

// OnOpenStack reports whether the DMI facts identify an OpenStack guest.
// cloud-init also assumes OpenStack on every non-x86 machine; we do not,
// because that would mean network timeouts on every ARM board.
func OnOpenStack(f *sources.Facts) (bool, string) {
	if f == nil {
		return false, ""
	}
	if p := f.DMI["product_name"]; slices.Contains(productNames, p) {
		return true, "DMI product_name is " + p
	}
	if a := f.DMI["chassis_asset_tag"]; slices.Contains(assetTags, a) {
		return true, "DMI chassis_asset_tag is " + a
	}
	return false, ""
}

// Source reads one OpenStack metadata endpoint. Its Origin, the
// Origin.Source of every document, is "openstack:" and the base URL.
type Source struct {
	fetch.Endpoint
}

// New returns a source for baseURL ("" means DefaultURL).
func New(baseURL string) *Source {
	return &Source{fetch.NewEndpoint("openstack", baseURL, DefaultURL)}
}

// Name implements sources.Source.
func (s *Source) Name() string { return "openstack" }

// Detect implements sources.Source (DMI only; whether a config drive
// exists is the caller's knowledge: see platform.Decide).
func (s *Source) Detect(f *sources.Facts) sources.Presence {
	ok, _ := OnOpenStack(f)
	return s.Presence(ok)
}

var dated = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`) })

// pickVersion: "latest" when listed, else the newest version we know that
// is listed, else the newest dated one listed, else "latest" (a service
// without a listing usually still serves it).
func pickVersion(listed []string) string {
	if slices.Contains(listed, "latest") {
		return "latest"
	}
	for i := len(knownVersions) - 1; i >= 0; i-- {
		if slices.Contains(listed, knownVersions[i]) {
			return knownVersions[i]
		}
	}
	best := ""
	for _, v := range listed {
		if dated().MatchString(v) && v > best {
			best = v
		}
	}
	if best != "" {
		return best
	}
	return "latest"
}

// files in the order they are fetched, with their kinds.
var files = []struct {
	name     string
	kind     sources.Kind
	required bool
}{
	{"meta_data.json", sources.KindOpenStackMetaData, true},
	{"network_data.json", sources.KindOpenStackNetworkData, false},
	{"user_data", sources.KindUserData, false},
	{"vendor_data.json", sources.KindVendorDataJSON, false},
	{"vendor_data2.json", sources.KindVendorData2JSON, false},
}

// Fetch implements sources.Source.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	ctx, cancel := s.Client.WithDeadline(ctx)
	defer cancel()
	list, err := s.Client.Get(ctx, s.Base()+"/openstack", nil, fetch.SmallLimit)
	if err != nil && !errors.Is(err, sources.ErrNotFound) {
		return nil, err
	}
	var listed []string
	for _, l := range fetch.Lines(list) {
		listed = append(listed, strings.TrimSuffix(l, "/"))
	}
	dir := "openstack/" + pickVersion(listed) + "/"
	var docs []sources.Document
	for _, f := range files {
		b, err := s.Client.Get(ctx, s.Base()+"/"+dir+f.name, nil, fetch.DefaultLimit)
		switch {
		case errors.Is(err, sources.ErrNotFound) && f.required:
			return nil, fmt.Errorf("openstack: %s/%s%s is missing (it is required): %w", s.Base(), dir, f.name, err)
		case errors.Is(err, sources.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: s.Origin(), File: dir + f.name},
			Kind:   f.kind,
			Data:   b,
		})
	}
	return docs, nil
}
