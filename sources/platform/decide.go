package platform

import (
	"errors"
	"fmt"
	"strings"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/ec2"
	"github.com/provision-dev/provision/sources/nocloudnet"
	"github.com/provision-dev/provision/sources/openstack"
	"github.com/provision-dev/provision/sources/url"
)

// Candidate is a source the facts point at, with why.
type Candidate struct {
	Source   sources.Source
	Presence sources.Presence
	Reason   string
}

// Decide lists the command-line, NoCloud-line and metadata-service sources
// the facts point at, in precedence order (kernel URL > NoCloud line >
// metadata service; SPEC §3). It reads nothing and sends nothing: it looks
// only at f. configDrive tells whether a config drive was found: OpenStack's
// metadata service is then skipped, the drive has the same data.
// Errors (an unsupported or malformed kernel URL) are returned together
// with the candidates that are fine.
func Decide(f *sources.Facts, configDrive bool) ([]Candidate, error) {
	if f == nil {
		return nil, nil
	}
	var out []Candidate
	var errs []error
	opts, err := ParseOptions(f.Cmdline)
	if err != nil {
		errs = append(errs, err)
	}
	for _, ku := range opts.URLs {
		s, err := url.New(ku.Param, ku.URL)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, Candidate{Source: s, Presence: sources.NeedsNetwork, Reason: ku.Param + "= on the kernel command line"})
	}
	if l, ok := nocloudnet.FromFacts(f); ok {
		s := nocloudnet.New(l, f.Prefix)
		if p := s.Detect(f); p != sources.Absent {
			where := map[string]string{"cmdline": "the kernel command line", "dmi": "the DMI system serial", "dmi+cmdline": "the DMI system serial and the kernel command line"}[l.From]
			out = append(out, Candidate{Source: s, Presence: p, Reason: "ds=nocloud in " + where})
		}
	}
	if ok, why := ec2.OnEC2(f); ok {
		out = append(out, Candidate{Source: ec2.New(""), Presence: sources.NeedsNetwork, Reason: why})
	}
	if ok, why := openstack.OnOpenStack(f); ok && !configDrive {
		out = append(out, Candidate{Source: openstack.New(""), Presence: sources.NeedsNetwork, Reason: why})
	}
	return out, errors.Join(errs...)
}

// NeedsNetwork reports whether any candidate needs the network up.
func NeedsNetwork(c []Candidate) bool {
	for _, x := range c {
		if x.Presence == sources.NeedsNetwork {
			return true
		}
	}
	return false
}

// Parse turns a --source argument naming a network source into a source:
//
//	ec2 | ec2:URL            EC2 IMDS at URL (default http://169.254.169.254)
//	openstack | openstack:URL OpenStack metadata service
//	nocloud:URL | nocloud-net:URL   NoCloud seed over http(s)
//	http(s)://...            one document, kind sniffed by the engine
//	ignition:http(s)://...   one Ignition document
//
// ok is false when spec is not one of these (a path, an image: the caller's
// business). Explicitly named sources are tried whatever the facts say.
func Parse(spec string) (s sources.Source, ok bool, err error) {
	kind, rest, _ := strings.Cut(spec, ":")
	switch kind {
	case "ec2", "openstack":
		if rest != "" {
			if err := httpURL(rest); err != nil {
				return nil, true, fmt.Errorf("--source %s: %w", spec, err)
			}
		}
		if kind == "ec2" {
			e := ec2.New(rest)
			e.Explicit = true
			return e, true, nil
		}
		o := openstack.New(rest)
		o.Explicit = true
		return o, true, nil
	case "nocloud", "nocloud-net":
		if !strings.HasPrefix(rest, "http://") && !strings.HasPrefix(rest, "https://") {
			return nil, false, nil // a local seed: a directory or image
		}
		if err := httpURL(rest); err != nil {
			return nil, true, fmt.Errorf("--source %s: %w", spec, err)
		}
		return nocloudnet.NewSeed(rest), true, nil
	case "ignition":
		if !strings.Contains(rest, "://") {
			return nil, false, nil
		}
		u, err := url.New(url.ParamIgnition, rest)
		if err != nil {
			return nil, true, err
		}
		return u, true, nil
	case "http", "https", "tftp":
		u, err := url.New("", spec)
		if err != nil {
			return nil, true, err
		}
		return u, true, nil
	}
	return nil, false, nil
}

func httpURL(s string) error {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("want an http:// or https:// URL")
	}
	if len(strings.TrimPrefix(strings.TrimPrefix(s, "http://"), "https://")) == 0 {
		return fmt.Errorf("no host in URL")
	}
	return nil
}
