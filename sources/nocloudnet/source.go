package nocloudnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	neturl "net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

// Source fetches the seed a NoCloud line names.
type Source struct {
	Client *fetch.Client
	Line   Line
	// Prefix is prepended to local seed paths (tests; "" on a real system,
	// where a path is read in the initrd's own filesystem).
	Prefix string
	// Explicit marks a source the user named (--source nocloud:URL).
	Explicit bool
}

// New returns a source for a line found by FromFacts.
func New(l Line, prefix string) *Source {
	return &Source{Client: fetch.New("nocloud", fetch.Options{}), Line: l, Prefix: prefix}
}

// NewSeed returns a source for a seed URL the user named.
func NewSeed(seed string) *Source {
	s := New(Line{Keys: map[string]string{"seedfrom": seed}, From: "command line"}, "")
	s.Explicit = true
	return s
}

// Name implements sources.Source.
func (s *Source) Name() string { return "nocloud-line" }

// Origin is the Origin.Source of every document: "nocloud:" and the seed.
func (s *Source) Origin() string {
	if seed := s.Line.Seed(); seed != "" {
		return "nocloud:" + seed
	}
	return "nocloud:" + s.Line.From
}

// Detect implements sources.Source.
func (s *Source) Detect(*sources.Facts) sources.Presence {
	seed := s.Line.Seed()
	switch {
	case seed == "" && len(s.overrides()) == 0:
		return sources.Absent
	case seed == "":
		return sources.Present // only i=/h= overrides for another NoCloud source
	case isLocal(seed):
		return sources.Present
	}
	return sources.NeedsNetwork
}

func isLocal(seed string) bool {
	return strings.HasPrefix(seed, "/") || strings.HasPrefix(seed, "file://")
}

// overrides are the meta-data keys the line sets itself.
func (s *Source) overrides() map[string]string {
	o := map[string]string{}
	for k, v := range s.Line.Keys {
		if k != "seedfrom" && k != "dsmode" {
			o[k] = v
		}
	}
	return o
}

// seedFiles in cloud-init's read_seeded order.
var seedFiles = []struct {
	name     string
	kind     sources.Kind
	required bool
}{
	{"network-config", sources.KindNetworkConfig, false},
	{"meta-data", sources.KindMetaData, true},
	{"user-data", sources.KindUserData, true},
	{"vendor-data", sources.KindVendorData, false},
}

// Location returns where a seed file is: "%s" in the seed is replaced by
// the name; otherwise a "/" is appended when the seed has none and no query
// (cloud-init's NOCLOUD_SEED_URL_APPEND_FORWARD_SLASH) and the name added.
func Location(seed, name string) string {
	if strings.Contains(seed, "%s") {
		return strings.ReplaceAll(seed, "%s", name)
	}
	if !strings.HasSuffix(seed, "/") && !strings.Contains(seed, "?") {
		seed += "/"
	}
	return seed + name
}

// Fetch implements sources.Source. The documents come in seed order; the
// line's own keys (i=, h=, ...) follow the seed's meta-data as a second JSON
// meta-data document with Origin.File "cmdline"/"dmi": a later meta-data
// document overrides an earlier one key by key, as cloud-init merges them.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	ctx, cancel := s.Client.WithDeadline(ctx)
	defer cancel()
	var docs []sources.Document
	seed := s.Line.Seed()
	if seed != "" {
		if err := checkSeed(seed); err != nil {
			return nil, fmt.Errorf("nocloud: seedfrom %q: %w", seed, err)
		}
	}
	for _, f := range seedFiles {
		if seed == "" {
			break
		}
		loc := Location(seed, f.name)
		b, err := s.read(ctx, loc)
		switch {
		case errors.Is(err, sources.ErrNotFound) && f.required:
			return nil, fmt.Errorf("nocloud: %s is missing (meta-data and user-data are both required): %w", loc, err)
		case errors.Is(err, sources.ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		docs = append(docs, sources.Document{
			Origin: config.Origin{Source: s.Origin(), File: f.name},
			Kind:   f.kind,
			Data:   b,
		})
		if f.name == "meta-data" {
			docs = append(docs, s.overrideDocs()...)
		}
	}
	if seed == "" {
		docs = s.overrideDocs()
	}
	return docs, nil
}

func (s *Source) overrideDocs() []sources.Document {
	o := s.overrides()
	if len(o) == 0 {
		return nil
	}
	b, _ := json.MarshalIndent(o, "", "  ") // a map of strings always marshals
	return []sources.Document{{
		Origin: config.Origin{Source: s.Origin(), File: s.Line.From},
		Kind:   sources.KindMetaData,
		Data:   append(b, '\n'),
	}}
}

func checkSeed(seed string) error {
	if isLocal(seed) {
		return nil
	}
	u, err := neturl.Parse(strings.ReplaceAll(seed, "%s", "x"))
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "http", "https":
		return nil
	case "ftp", "ftps", "tftp":
		return fmt.Errorf("%w: %s is not supported; use http, https, file:// or a path", fetch.ErrUnsupported, u.Scheme)
	}
	return fmt.Errorf("%w: want http://, https://, file:// or an absolute path", fetch.ErrUnsupported)
}

func (s *Source) read(ctx context.Context, loc string) ([]byte, error) {
	if !isLocal(loc) {
		return s.Client.Get(ctx, loc, nil, fetch.DefaultLimit)
	}
	p := loc
	if rest, ok := strings.CutPrefix(loc, "file://"); ok {
		u, err := neturl.Parse(loc)
		if err != nil {
			return nil, fmt.Errorf("nocloud: %s: %w", loc, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("nocloud: %s: file URL with a host", loc)
		}
		p = u.Path
		if p == "" {
			p = rest
		}
	}
	if s.Prefix != "" {
		p = filepath.Join(s.Prefix, p)
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("nocloud: %s: %w", loc, sources.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("nocloud: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, fetch.DefaultLimit+1))
	if err != nil {
		return nil, fmt.Errorf("nocloud: %s: %w", loc, err)
	}
	if len(b) > fetch.DefaultLimit {
		return nil, fmt.Errorf("nocloud: %s: %w: more than %d bytes", loc, fetch.ErrTooLarge, fetch.DefaultLimit)
	}
	return b, nil
}
