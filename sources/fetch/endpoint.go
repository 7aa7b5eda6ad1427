package fetch

import (
	"strings"

	"github.com/provision-dev/provision/sources"
)

// Endpoint is what a metadata-service source (ec2, openstack) is besides
// its protocol: the client it fetches with, the base URL of the service and
// whether the user named it. Sources embed it.
type Endpoint struct {
	// Client may be replaced (tests tune its timeouts).
	Client *Client
	// Explicit marks a source the user named (--source name:URL): it is
	// tried whatever the platform facts say.
	Explicit bool
	name     string
	base     string
}

// NewEndpoint returns the endpoint of the source called name at baseURL
// (defaultURL when ""), with a default client. Trailing slashes are dropped
// so paths join with a single "/".
func NewEndpoint(name, baseURL, defaultURL string) Endpoint {
	if baseURL == "" {
		baseURL = defaultURL
	}
	return Endpoint{Client: New(name, Options{}), name: name, base: strings.TrimRight(baseURL, "/")}
}

// Base is the service's base URL, without a trailing slash.
func (e *Endpoint) Base() string { return e.base }

// Origin is the Origin.Source of every document the source reads:
// "name:base", e.g. "ec2:http://169.254.169.254".
func (e *Endpoint) Origin() string { return e.name + ":" + e.base }

// Presence is the source's Detect answer: a named source or one the local
// facts point to (on) needs the network; otherwise it is absent.
func (e *Endpoint) Presence(on bool) sources.Presence {
	if e.Explicit || on {
		return sources.NeedsNetwork
	}
	return sources.Absent
}
