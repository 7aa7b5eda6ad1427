// Package url fetches a configuration named by URL on the kernel command
// line (provision.url=, combustion.url=, ignition.config.url=) or on the
// provision command line. The document's kind is decided by the engine from
// its content, except for ignition.config.url which is always Ignition.
package url

import (
	"context"
	"fmt"
	neturl "net/url"
	"path"
	"strings"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

// Kernel command-line parameters that name a configuration URL, in the
// order the engine should prefer them.
const (
	ParamProvision  = "provision.url"
	ParamCombustion = "combustion.url"
	ParamIgnition   = "ignition.config.url"
)

// Params lists the URL parameters in order of preference.
var Params = []string{ParamProvision, ParamCombustion, ParamIgnition}

// Source fetches one URL.
type Source struct {
	Client *fetch.Client
	// Param is the command-line parameter the URL came from ("" when the
	// user gave it to --source).
	Param string
	URL   string
}

// New returns a source for rawURL given by param. The URL is checked now
// (scheme, #sha256= pin) so a typo is reported before any network is
// brought up.
func New(param, rawURL string) (*Source, error) {
	u, err := neturl.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("url: %s=%s: %w", param, rawURL, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "tftp":
		return nil, fmt.Errorf("url: %s: tftp is not supported yet; serve the file over http or https: %w", rawURL, fetch.ErrUnsupported)
	default:
		return nil, fmt.Errorf("url: %s: scheme %q: %w (want http or https)", rawURL, u.Scheme, fetch.ErrUnsupported)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("url: %s: no host", rawURL)
	}
	if _, err := fetch.Pin(rawURL); err != nil {
		return nil, fmt.Errorf("url: %s: %w", rawURL, err)
	}
	return &Source{Client: fetch.New("url", fetch.Options{}), Param: param, URL: rawURL}, nil
}

// Name implements sources.Source.
func (s *Source) Name() string { return "url" }

// Origin is the Origin.Source of the document: "url:" and the URL without
// its fragment (the pin is not part of the address).
func (s *Source) Origin() string {
	u, _, _ := strings.Cut(s.URL, "#")
	return "url:" + u
}

// Kind is what the document is known to be.
func (s *Source) Kind() sources.Kind {
	if s.Param == ParamIgnition {
		return sources.KindIgnition
	}
	return sources.KindUnknown
}

// Detect implements sources.Source: a named URL is always worth fetching.
func (s *Source) Detect(*sources.Facts) sources.Presence { return sources.NeedsNetwork }

// Fetch implements sources.Source. A 404 is an error here: the user named
// this URL, so its absence is not "no configuration" but a mistake.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	ctx, cancel := s.Client.WithDeadline(ctx)
	defer cancel()
	b, err := s.Client.GetPinned(ctx, s.URL, fetch.DefaultLimit)
	if err != nil {
		return nil, err
	}
	u, _ := neturl.Parse(s.URL)
	name := path.Base(u.Path)
	if name == "/" || name == "." {
		name = ""
	}
	return []sources.Document{{
		Origin: config.Origin{Source: s.Origin(), File: name},
		Kind:   s.Kind(),
		Data:   b,
	}}, nil
}
