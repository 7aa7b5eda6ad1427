// Package ec2 reads the EC2 instance metadata service (IMDS, and the clones
// other clouds serve at 169.254.169.254): user-data as is, and the meta-data
// tree assembled into one JSON meta-data document. It is tried only when
// platform facts say the machine runs on EC2 (see OnEC2).
package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

// DefaultURL is where IMDS lives.
const DefaultURL = "http://169.254.169.254"

const (
	tokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"
	tokenHeader    = "X-aws-ec2-metadata-token"
	tokenTTL       = "21600"

	// A hostile or broken service must not make us walk an unbounded tree.
	maxKeys     = 100
	maxMACs     = 32
	maxMACLeafs = 64
)

// ErrDisabled means the token PUT was refused with 403: the instance owner
// turned IMDS off. We stop there; falling back to v1 would defeat the setting.
var ErrDisabled = errors.New("instance metadata service is disabled (403 on the token request)")

// Source reads one IMDS endpoint. Its Origin, the Origin.Source of every
// document, is "ec2:http://169.254.169.254".
type Source struct {
	fetch.Endpoint
}

// New returns a source for baseURL ("" means DefaultURL).
func New(baseURL string) *Source {
	return &Source{fetch.NewEndpoint("ec2", baseURL, DefaultURL)}
}

// Name implements sources.Source.
func (s *Source) Name() string { return "ec2" }

// Detect implements sources.Source: local facts only, no traffic.
func (s *Source) Detect(f *sources.Facts) sources.Presence {
	ok, _ := OnEC2(f)
	return s.Presence(ok)
}

// OnEC2 reports whether the facts identify an EC2 instance, and why.
// It follows cloud-init's identify_aws: the Xen hypervisor UUID or the DMI
// system UUID starts with "ec2", in either byte order (SMBIOS stores the
// first three UUID fields little-endian and firmware disagrees on whether
// to swap them back); or the DMI vendor/product names Amazon.
func OnEC2(f *sources.Facts) (bool, string) {
	if f == nil {
		return false, ""
	}
	if u := strings.ToLower(f.HypervisorUUID); strings.HasPrefix(u, "ec2") {
		return true, "/sys/hypervisor/uuid starts with ec2"
	}
	u := strings.ToLower(f.DMI["product_uuid"])
	if strings.HasPrefix(u, "ec2") {
		return true, "DMI product_uuid starts with ec2"
	}
	if swapped(u) {
		return true, "DMI product_uuid starts with ec2 (swapped byte order)"
	}
	for _, k := range []string{"sys_vendor", "board_vendor", "bios_vendor"} {
		if v := f.DMI[k]; strings.HasPrefix(v, "Amazon EC2") {
			return true, "DMI " + k + " is " + v
		}
	}
	return false, ""
}

// swapped reports whether the UUID, with its first three fields byte-swapped,
// starts with "ec2" (45e12aec-dcd1-b213-... reads ec2ae145-d1dc-13b2-...).
func swapped(s string) bool {
	id, err := uuid.Parse(s)
	if err != nil {
		return false
	}
	le := []byte{id[3], id[2], id[1], id[0], id[5], id[4], id[7], id[6]}
	return strings.HasPrefix(fmt.Sprintf("%x", le), "ec2")
}

// MetaData is the assembled meta-data document (KindMetaData, JSON), the
// same keys cloud-init's EC2 datasource exposes.
type MetaData struct {
	InstanceID    string       `json:"instance-id"`
	LocalHostname string       `json:"local-hostname,omitempty"`
	PublicKeys    []string     `json:"public-keys,omitempty"`
	Network       *NetworkData `json:"network,omitempty"`
}

// NetworkData holds network/interfaces/macs/<mac>/<leaf>; a leaf with
// several lines (local-ipv4s) is a list, otherwise a string.
type NetworkData struct {
	Interfaces struct {
		MACs map[string]map[string]any `json:"macs"`
	} `json:"interfaces"`
}

// session is one Fetch: its token state lives here, not in the Source.
type session struct {
	s     *Source
	token string
	v1    bool
}

// Fetch implements sources.Source.
func (s *Source) Fetch(ctx context.Context) ([]sources.Document, error) {
	ctx, cancel := s.Client.WithDeadline(ctx)
	defer cancel()
	se := &session{s: s}
	if err := se.newToken(ctx); err != nil {
		return nil, err
	}
	var docs []sources.Document
	ud, err := se.get(ctx, "latest/user-data", fetch.DefaultLimit)
	switch {
	case errors.Is(err, sources.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		docs = append(docs, s.doc("latest/user-data", sources.KindUserData, ud))
	}
	md, err := se.metaData(ctx)
	if err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	// meta-data first: the engine reads the instance-id before user-data.
	docs = append([]sources.Document{s.doc("latest/meta-data", sources.KindMetaData, append(js, '\n'))}, docs...)
	return docs, nil
}

func (s *Source) doc(file string, k sources.Kind, b []byte) sources.Document {
	return sources.Document{Origin: config.Origin{Source: s.Origin(), File: file}, Kind: k, Data: b}
}

func (se *session) newToken(ctx context.Context) error {
	c := se.s.Client
	resp, err := c.Do(ctx, fetch.Request{
		Method: http.MethodPut,
		URL:    se.s.Base() + "/latest/api/token",
		Header: http.Header{tokenTTLHeader: {tokenTTL}},
		Limit:  4096,
		// A token must come from the metadata address itself.
		SameOrigin: true,
	})
	if err != nil {
		return err
	}
	switch {
	case resp.Code >= 200 && resp.Code < 300:
		tok := strings.TrimSpace(string(resp.Body))
		if tok == "" || strings.ContainsAny(tok, "\r\n") {
			return fmt.Errorf("ec2: %s/latest/api/token: empty or malformed token", se.s.Base())
		}
		se.token = tok
		return nil
	case resp.Code == http.StatusForbidden:
		return fmt.Errorf("ec2: %s: %w", se.s.Base(), ErrDisabled)
	case resp.Code == http.StatusNotFound || resp.Code == http.StatusMethodNotAllowed:
		// A clone without IMDSv2 (OpenStack's EC2 API, older private clouds).
		se.v1 = true
		return nil
	}
	return fmt.Errorf("ec2: PUT %s/latest/api/token: HTTP %d", se.s.Base(), resp.Code)
}

// get fetches base/path with the token; a 401 means the token expired or
// was revoked: fetch a new one and try again, once per GET (a fresh token
// refused again means something else is wrong).
func (se *session) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	u := se.s.Base() + "/" + path
	refreshed := false
	for {
		h := http.Header{}
		if !se.v1 {
			h.Set(tokenHeader, se.token)
		}
		// The token never follows a redirect off the metadata address:
		// such a redirect is answered as the 3xx it is (an error below).
		resp, err := se.s.Client.Do(ctx, fetch.Request{URL: u, Header: h, Limit: limit, SameOrigin: true})
		if err != nil {
			return nil, err
		}
		switch {
		case resp.Code >= 200 && resp.Code < 300:
			return resp.Body, nil
		case resp.Code == http.StatusUnauthorized && !se.v1 && !refreshed:
			refreshed = true
			if err := se.newToken(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return nil, fmt.Errorf("ec2: %w", &fetch.StatusError{Method: http.MethodGet, URL: u, Code: resp.Code})
	}
}

func (se *session) metaData(ctx context.Context) (*MetaData, error) {
	const md = "latest/meta-data/"
	var m MetaData
	id, err := se.get(ctx, md+"instance-id", fetch.SmallLimit)
	if err != nil {
		return nil, fmt.Errorf("%w (instance-id is required)", err)
	}
	m.InstanceID = strings.TrimSpace(string(id))
	if m.InstanceID == "" {
		return nil, fmt.Errorf("ec2: %s/%sinstance-id is empty", se.s.Base(), md)
	}
	if h, err := se.optional(ctx, md+"local-hostname"); err != nil {
		return nil, err
	} else if h != nil {
		m.LocalHostname = strings.TrimSpace(string(h))
	}

	list, err := se.optional(ctx, md+"public-keys/")
	if err != nil {
		return nil, err
	}
	for i, line := range fetch.Lines(list) {
		if i >= maxKeys {
			break
		}
		// "0=my-key-name": the index addresses the key.
		idx, _, _ := strings.Cut(line, "=")
		idx = strings.TrimSuffix(idx, "/")
		if !segment(idx) {
			return nil, fmt.Errorf("ec2: %s/%spublic-keys/: bad entry %q", se.s.Base(), md, line)
		}
		k, err := se.optional(ctx, md+"public-keys/"+idx+"/openssh-key")
		if err != nil {
			return nil, err
		}
		m.PublicKeys = append(m.PublicKeys, fetch.Lines(k)...)
	}

	macs, err := se.optional(ctx, md+"network/interfaces/macs/")
	if err != nil {
		return nil, err
	}
	for i, line := range fetch.Lines(macs) {
		if i >= maxMACs {
			break
		}
		mac := strings.TrimSuffix(line, "/")
		if !segment(mac) {
			return nil, fmt.Errorf("ec2: %s/%snetwork/interfaces/macs/: bad entry %q", se.s.Base(), md, line)
		}
		dir := md + "network/interfaces/macs/" + mac + "/"
		leafs, err := se.optional(ctx, dir)
		if err != nil {
			return nil, err
		}
		entry := map[string]any{}
		for j, leaf := range fetch.Lines(leafs) {
			if j >= maxMACLeafs {
				break
			}
			// Sub-directories (ipv4-associations/) are not needed to
			// configure the interface; leaves are.
			if strings.HasSuffix(leaf, "/") || !segment(leaf) {
				continue
			}
			v, err := se.optional(ctx, dir+leaf)
			if err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			if l := fetch.Lines(v); len(l) > 1 {
				entry[leaf] = l
			} else {
				entry[leaf] = strings.TrimSpace(string(v))
			}
		}
		if m.Network == nil {
			m.Network = &NetworkData{}
			m.Network.Interfaces.MACs = map[string]map[string]any{}
		}
		m.Network.Interfaces.MACs[mac] = entry
	}
	return &m, nil
}

// optional returns nil, nil for a 404.
func (se *session) optional(ctx context.Context, path string) ([]byte, error) {
	b, err := se.get(ctx, path, fetch.SmallLimit)
	if errors.Is(err, sources.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// segment accepts one harmless path segment from a listing, so a hostile
// service cannot steer our requests elsewhere.
func segment(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("/?#%\\", r) {
			return false
		}
	}
	return true
}
