// Package configdrive reads an OpenStack config drive: a vfat or iso9660
// filesystem labelled config-2 (or CONFIG-2) holding openstack/<version>/
// meta_data.json and friends, as Nova writes it.
package configdrive

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/blockdev"
)

// Labels a config drive may carry.
var Labels = []string{"config-2", "CONFIG-2"}

var files = []struct {
	name     string
	kind     sources.Kind
	required bool
}{
	{"meta_data.json", sources.KindOpenStackMetaData, true},
	{"user_data", sources.KindUserData, false},
	{"vendor_data.json", sources.KindVendorDataJSON, false},
	{"vendor_data2.json", sources.KindVendorData2JSON, false},
	{"network_data.json", sources.KindOpenStackNetworkData, false},
}

var dated = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`) })

// VersionDir picks the directory to read: openstack/latest when present,
// else the newest dated version (the names sort as dates).
func VersionDir(fsys fs.FS) (string, error) {
	entries, err := fs.ReadDir(fsys, "openstack")
	if err != nil {
		return "", fmt.Errorf("no openstack/ directory: %w", err)
	}
	var versions []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if e.Name() == "latest" {
			return "openstack/latest", nil
		}
		if dated().MatchString(e.Name()) {
			versions = append(versions, e.Name())
		}
	}
	if len(versions) == 0 {
		return "", fmt.Errorf("openstack/ has neither latest/ nor a dated version directory: %w", fs.ErrNotExist)
	}
	slices.Sort(versions)
	return "openstack/" + versions[len(versions)-1], nil
}

// ReadFS reads a config drive tree from fsys; source names it in origins
// ("configdrive:/dev/vdb"). meta_data.json is required.
func ReadFS(fsys fs.FS, source string, limit int64) ([]sources.Document, error) {
	dir, err := VersionDir(fsys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	var docs []sources.Document
	for _, f := range files {
		name := path.Join(dir, f.name)
		b, err := blockdev.ReadFileLimit(fsys, name, limit)
		if errors.Is(err, fs.ErrNotExist) {
			if f.required {
				return nil, fmt.Errorf("%s:%s: required file is missing: %w", source, name, err)
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%s: %w", source, name, err)
		}
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: source, File: name},
			Kind:   f.kind,
			Data:   b,
		})
	}
	return docs, nil
}

// ReadMedium reads a config drive medium, naming it "configdrive:<device>".
func ReadMedium(m *blockdev.Medium) ([]sources.Document, error) {
	return ReadFS(m, "configdrive:"+m.Name, 0)
}

// Source is the config drive source.
type Source struct {
	Env  blockdev.Env
	wait time.Duration
}

// Name implements sources.Source.
func (s *Source) Name() string { return "configdrive" }

// Detect looks for a config-2 filesystem now. Without one it answers Maybe
// only when the command line asks for it (ds=configdrive, or
// provision.device_timeout=): an OpenStack guest without a drive must not
// wait, it has the metadata service.
func (s *Source) Detect(f *sources.Facts) sources.Presence {
	s.wait = 0
	if vols, err := blockdev.ScanDevices(s.Env); err == nil && blockdev.HasLabel(vols, Labels...) {
		return sources.Present
	}
	timeout, asked := blockdev.DeviceTimeout(f.Cmdline)
	for _, w := range f.Cmdline {
		if v, ok := strings.CutPrefix(w, "ds="); ok && strings.EqualFold(strings.Split(v, ";")[0], "configdrive") {
			asked = true
		}
	}
	if asked {
		s.wait = timeout
		return sources.Maybe
	}
	return sources.Absent
}

// Fetch reads the first config drive.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	m, err := blockdev.FindByLabel(ctx, s.Env, Labels, s.wait)
	if errors.Is(err, blockdev.ErrNoDevice) {
		return nil, fmt.Errorf("configdrive: %w", sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("configdrive: %w", err)
	}
	defer m.Close()
	return ReadMedium(m)
}
