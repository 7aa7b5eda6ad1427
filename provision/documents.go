package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/provision-dev/provision/provision/cloudinit"
	"github.com/provision-dev/provision/provision/combustion"
	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/provision/ignition"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
	"go.yaml.in/yaml/v3"
)

// ParseOptions steer how documents become the model.
type ParseOptions struct {
	Strict       bool
	DefaultUser  *config.User
	FetchInclude func(ctx context.Context, url string) ([]byte, error)
	// FetchConfig fetches the configs an Ignition config references
	// (ignition.config.merge and replace); see configFetcher.
	FetchConfig func(ctx context.Context, url string, header http.Header) ([]byte, error)
}

// Bounds on what the #include URLs of one run may fetch: included data can
// include more, so a loop or a fan-out must end at a count and a size, and
// everything at one deadline (the depth is the parser's own limit).
const (
	maxIncludes     = 32
	maxIncludeBytes = 16 << 20
)

// includeFetcher is the FetchInclude of a run: #include and
// text/x-include-url URLs fetched with the sources' HTTP client (timeouts,
// retries, size limits; http and https only, a #sha256= pin verified),
// bounded per run by maxIncludes, maxIncludeBytes and one overall deadline.
// A dry run (validate, --dry-run) fetches nothing: checking a config must
// not reach out to the URLs it names, and the warning says so.
func includeFetcher(dryRun bool) func(ctx context.Context, url string) ([]byte, error) {
	if dryRun {
		return func(context.Context, string) ([]byte, error) {
			return nil, fmt.Errorf("%w: a dry run (validate, --dry-run) does not fetch included user-data, so its content is not checked; the boot fetches it", cloudinit.ErrNotFetched)
		}
	}
	f := &includes{client: fetch.New("include", fetch.Options{})}
	return f.get
}

// includes counts one run's fetches.
type includes struct {
	client   *fetch.Client
	mu       sync.Mutex
	count    int
	bytes    int64
	deadline time.Time // set by the first fetch
}

func (f *includes) get(ctx context.Context, url string) ([]byte, error) {
	return f.bounded(ctx, "#include URLs", "included user-data exceeds", func(ctx context.Context, limit int64) ([]byte, error) {
		return f.client.GetPinned(ctx, url, limit)
	})
}

// configFetcher is the FetchConfig of a run: Ignition's referenced configs
// fetched with the sources' HTTP client (timeouts, retries, size limits;
// http and https only), their httpHeaders sent with the request and not
// with a redirect (as Ignition does), bounded per run like the includes;
// the count and depth of references are the Ignition parser's limits. A
// dry run fetches nothing, as for includes, and the warning says so.
func configFetcher(dryRun bool) func(ctx context.Context, url string, header http.Header) ([]byte, error) {
	if dryRun {
		return func(context.Context, string, http.Header) ([]byte, error) {
			return nil, fmt.Errorf("%w: a dry run (validate, --dry-run) does not fetch referenced Ignition configs; the boot fetches them", ignition.ErrNotFetched)
		}
	}
	f := &includes{client: fetch.New("ignition", fetch.Options{})}
	return func(ctx context.Context, url string, header http.Header) ([]byte, error) {
		return f.bounded(ctx, "referenced Ignition configs", "referenced Ignition configs exceed", func(ctx context.Context, limit int64) ([]byte, error) {
			req := fetch.Request{URL: url, Header: header, Limit: limit, HeadersOnce: true}
			resp, err := f.client.Do(ctx, req)
			if err != nil {
				return nil, err
			}
			if resp.Code < 200 || resp.Code > 299 {
				return nil, fmt.Errorf("%s: %w", f.client.Source, &fetch.StatusError{Method: http.MethodGet, URL: url, Code: resp.Code})
			}
			return resp.Body, nil
		})
	}
}

// bounded runs one fetch within the run's count, bytes and deadline.
func (f *includes) bounded(ctx context.Context, what, data string, get func(ctx context.Context, limit int64) ([]byte, error)) ([]byte, error) {
	f.mu.Lock()
	if f.count >= maxIncludes {
		f.mu.Unlock()
		return nil, fmt.Errorf("more than %d %s in one run", maxIncludes, what)
	}
	f.count++
	if f.deadline.IsZero() {
		f.deadline = time.Now().Add(f.client.Deadline)
	}
	deadline, left := f.deadline, int64(maxIncludeBytes)-f.bytes
	f.mu.Unlock()
	if left <= 0 {
		return nil, fmt.Errorf("%s %d bytes in one run", data, maxIncludeBytes)
	}
	ctx, cancel := context.WithDeadlineCause(ctx, deadline, &fetch.DeadlineError{Source: f.client.Source, Deadline: f.client.Deadline})
	defer cancel()
	body, err := get(ctx, left)
	if err != nil {
		if errors.Is(err, fetch.ErrTooLarge) {
			return nil, fmt.Errorf("%s %d bytes in one run: %w", data, maxIncludeBytes, err)
		}
		return nil, err
	}
	f.mu.Lock()
	f.bytes += int64(len(body))
	f.mu.Unlock()
	return body, nil
}

// ParseDocuments turns every document into one model. Documents are grouped
// by source; each source's group is parsed on its own (cloud-init data of one
// source merges by cloud-init's rules), then the groups merge in the order
// given, which is the sources' precedence (SPEC §3): earlier wins.
func ParseDocuments(ctx context.Context, docs []sources.Document, opts ParseOptions) (*config.Config, error) {
	var order []string
	groups := map[string][]sources.Document{}
	for _, d := range docs {
		if _, ok := groups[d.Origin.Source]; !ok {
			order = append(order, d.Origin.Source)
		}
		groups[d.Origin.Source] = append(groups[d.Origin.Source], d)
	}

	// Every source and document is parsed even after one fails, so all
	// their errors are reported in one pass; the configuration returned
	// with an error holds what did parse, for the checks that follow.
	merged := &config.Config{}
	var errs []error
	for _, src := range order {
		c, err := parseSource(ctx, groups[src], opts)
		if err != nil {
			errs = append(errs, err)
		}
		if c != nil {
			merged.Merge(c)
		}
	}
	return merged, errors.Join(errs...)
}

func parseSource(ctx context.Context, docs []sources.Document, opts ParseOptions) (*config.Config, error) {
	out := &config.Config{}
	var errs []error
	var comb []combustion.File
	var set cloudinit.DataSet
	hasCloud := false
	blob := func(d sources.Document) *cloudinit.Blob {
		hasCloud = true
		return &cloudinit.Blob{Origin: d.Origin, Data: d.Data}
	}
	for _, d := range docs {
		kind := kindOf(d)
		switch kind {
		case sources.KindCombustion:
			rel := d.Origin.File
			rel = strings.TrimPrefix(rel, "combustion/")
			if d.Kind == sources.KindUnknown {
				rel = "script" // a URL pointing at a script
			}
			comb = append(comb, combustion.File{Origin: d.Origin, Path: rel, Data: d.Data})
		case sources.KindIgnition:
			c, err := ignition.ParseWith(ctx, d.Origin, d.Data, ignition.Options{Fetch: opts.FetchConfig})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out.Merge(c)
		case sources.KindMetaData:
			// NoCloud's `i=`/`h=` come as a second meta-data document
			// that overrides the seed's keys.
			if set.MetaData != nil {
				merged, err := overlayMetaData(set.MetaData, d)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				set.MetaData = merged
				continue
			}
			set.MetaData = blob(d)
		default:
			slot := cloudSlot(&set, kind)
			if slot == nil {
				errs = append(errs, fmt.Errorf("%s: unrecognised document (kind %q)", d.Origin, d.Kind))
				continue
			}
			*slot = blob(d)
		}
	}
	if len(comb) > 0 {
		c, err := combustion.Parse(comb)
		if err != nil {
			errs = append(errs, err)
		} else {
			out.Merge(c)
		}
	}
	if hasCloud {
		c, err := cloudinit.Parse(ctx, set, cloudinit.Options{
			Strict:       opts.Strict,
			DefaultUser:  opts.DefaultUser,
			FetchInclude: opts.FetchInclude,
		})
		if err != nil {
			errs = append(errs, err)
		}
		if c != nil {
			out.Merge(c)
		}
	}
	return out, errors.Join(errs...)
}

// kindOf is what a document is parsed as: the kind its source gave it or,
// for content a source cannot name (a URL, a file), the one Sniff finds.
func kindOf(d sources.Document) sources.Kind {
	if d.Kind == sources.KindUnknown {
		return Sniff(d.Data)
	}
	return d.Kind
}

// Sniff decides the kind of a document fetched from a URL by its content:
// an Ignition JSON config, a script for Combustion, or cloud-init user-data.
func Sniff(data []byte) sources.Kind {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("{")) {
		var probe struct {
			Ignition *json.RawMessage `json:"ignition"`
		}
		err := json.Unmarshal(trimmed, &probe)
		if err == nil && probe.Ignition != nil {
			return sources.KindIgnition
		}
		// Broken JSON that names the "ignition" section is a broken
		// Ignition config: its parser says where, instead of the
		// document passing as unknown user-data.
		if err != nil && bytes.Contains(trimmed, []byte(`"ignition"`)) {
			return sources.KindIgnition
		}
	}
	if bytes.HasPrefix(data, []byte("#!")) {
		return sources.KindCombustion
	}
	return sources.KindUserData
}

// overlayMetaData lays a later meta-data document over an earlier one key by
// key (NoCloud's `i=`/`h=` on the command line override the seed's values).
func overlayMetaData(base *cloudinit.Blob, over sources.Document) (*cloudinit.Blob, error) {
	var a, b map[string]any
	if err := yaml.Unmarshal(base.Data, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", base.Origin, err)
	}
	if err := yaml.Unmarshal(over.Data, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", over.Origin, err)
	}
	if a == nil {
		a = map[string]any{}
	}
	for k, v := range b {
		a[k] = v
	}
	data, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", over.Origin, err)
	}
	origin := base.Origin
	origin.File += "+" + over.Origin.File
	return &cloudinit.Blob{Origin: origin, Data: data}, nil
}

// cloudSlot is where a cloud-init document of kind goes in the data set;
// nil for kinds that are not cloud-init's.
func cloudSlot(set *cloudinit.DataSet, kind sources.Kind) **cloudinit.Blob {
	switch kind {
	case sources.KindUserData:
		return &set.UserData
	case sources.KindVendorData:
		return &set.VendorData
	case sources.KindVendorData2:
		return &set.VendorData2
	case sources.KindVendorDataJSON:
		return &set.VendorDataJSON
	case sources.KindVendorData2JSON:
		return &set.VendorData2JSON
	case sources.KindNetworkConfig:
		return &set.NetworkConfig
	case sources.KindOpenStackMetaData:
		return &set.OpenStackMetaData
	case sources.KindOpenStackNetworkData:
		return &set.OpenStackNetworkData
	}
	return nil
}
