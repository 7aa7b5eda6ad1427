// Package fetch is the HTTP client every network source uses: bounded
// per-request timeouts, bounded retries with exponential backoff, an overall
// per-source deadline, capped bodies and 404 reported as sources.ErrNotFound.
// Cloud-init users wait minutes on metadata timeouts; nothing here may wait
// without a bound.
package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/provision-dev/provision/sources"
)

// Defaults, as in SPEC §3 "Network sources".
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultDeadline       = 60 * time.Second
	DefaultRetries        = 4
	DefaultBackoff        = 250 * time.Millisecond
	maxBackoff            = 4 * time.Second
	// DefaultLimit caps a document (user-data, configs): a bigger body is cut
	// with an error instead of being read into memory.
	DefaultLimit = 16 << 20
	// SmallLimit caps metadata leaves and listings.
	SmallLimit = 1 << 20
)

// ErrTooLarge is returned (wrapped) when a body exceeds the limit.
var ErrTooLarge = errors.New("response body too large")

// ErrUnsupported is returned (wrapped) for URL schemes we do not fetch.
var ErrUnsupported = errors.New("unsupported URL scheme")

// ErrChecksum is returned (wrapped) when a #sha256= pin does not match.
var ErrChecksum = errors.New("sha256 mismatch")

// DeadlineError is the cause of a source's context when its overall deadline
// passes, so the error names the source that timed out.
type DeadlineError struct {
	Source   string
	Deadline time.Duration
}

func (e *DeadlineError) Error() string {
	return fmt.Sprintf("source %s timed out: overall deadline of %s exceeded", e.Source, e.Deadline)
}

// Is makes errors.Is(err, context.DeadlineExceeded) hold.
func (e *DeadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// StatusError is a non-2xx answer that was not retried (or ran out of retries).
type StatusError struct {
	Method string
	URL    string
	Code   int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
}

// Is makes a 404 match sources.ErrNotFound.
func (e *StatusError) Is(target error) bool {
	return target == sources.ErrNotFound && e.Code == http.StatusNotFound
}

// Client fetches for one source. The zero value is not usable; use New.
type Client struct {
	// Source names the source in errors ("ec2", "openstack", ...).
	Source string
	// RequestTimeout bounds one attempt, body included.
	RequestTimeout time.Duration
	// Deadline bounds everything a source does (see WithDeadline).
	Deadline time.Duration
	// Retries is how many times a failed attempt is repeated (connection
	// errors, timeouts of one attempt, 5xx).
	Retries int
	// Backoff is the first pause between attempts; it doubles each time.
	Backoff time.Duration

	http *http.Client
}

// Environment overrides of the defaults, for tests and for users who need
// a shorter or longer wait than SPEC §3's (a slow metadata service, a CI
// job): seconds ("20") or a Go duration ("1500ms"). They apply only where
// Options leaves the value zero; an unparsable value is ignored.
const (
	EnvDeadline       = "PROVISION_SOURCE_DEADLINE"
	EnvRequestTimeout = "PROVISION_REQUEST_TIMEOUT"
)

// envDuration reads one of the Env* overrides; 0 when unset or invalid.
func envDuration(name string) time.Duration {
	v := strings.TrimSpace(os.Getenv(name))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	return 0
}

// Options tune New; zero values take the defaults.
type Options struct {
	RequestTimeout time.Duration
	Deadline       time.Duration
	Retries        int // -1 for none
	Backoff        time.Duration
	// RootCAs replaces the system roots for https (tests, private CAs).
	RootCAs *x509.CertPool
}

// New returns a client for the named source.
func New(source string, o Options) *Client {
	c := &Client{
		Source:         source,
		RequestTimeout: o.RequestTimeout,
		Deadline:       o.Deadline,
		Retries:        o.Retries,
		Backoff:        o.Backoff,
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = envDuration(EnvRequestTimeout)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Deadline <= 0 {
		c.Deadline = envDuration(EnvDeadline)
	}
	if c.Deadline <= 0 {
		c.Deadline = DefaultDeadline
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	tr := &http.Transport{
		// No proxy: link-local metadata services must be reached directly,
		// and the initrd has no proxy configuration to honour.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   c.RequestTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   c.RequestTimeout,
		ResponseHeaderTimeout: c.RequestTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       10 * time.Second,
	}
	c.http = &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if headersNotRedirected(req.Context()) {
				// Ignition's rule for httpHeaders: a redirect gets none
				// of them, wherever it leads.
				req.Header = http.Header{"User-Agent": via[0].Header["User-Agent"]}
			}
			if sameOriginOnly(req.Context()) && !sameOrigin(req.URL, via[0].URL) {
				// Not followed: the caller gets the 3xx, and the
				// request's headers never reach the other host.
				return http.ErrUseLastResponse
			}
			if len(via) >= 5 {
				return fmt.Errorf("stopped after %d redirects", len(via))
			}
			return nil
		},
	}
	return c
}

// WithDeadline bounds ctx by the client's overall deadline; when it passes,
// errors name the source (DeadlineError). Call it once per Fetch.
func (c *Client) WithDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.Deadline, &DeadlineError{Source: c.Source, Deadline: c.Deadline})
}

// Request is one HTTP exchange.
type Request struct {
	Method string // GET when empty
	URL    string
	Header http.Header
	// Limit caps the body read; DefaultLimit when 0.
	Limit int64
	// SameOrigin keeps the request (and its headers: a session token) on
	// its scheme, host and port: a redirect anywhere else is not followed
	// and its 3xx is returned. Go forwards custom headers on every
	// redirect, so a header that must not leave the service needs this.
	SameOrigin bool
	// HeadersOnce sends Header with this request only, not with a
	// redirect it answers with (headers a config gives, such as Ignition's
	// httpHeaders, may hold credentials for that URL alone).
	HeadersOnce bool
}

type sameOriginKey struct{}

type headersOnceKey struct{}

func headersNotRedirected(ctx context.Context) bool {
	v, _ := ctx.Value(headersOnceKey{}).(bool)
	return v
}

func sameOriginOnly(ctx context.Context) bool {
	v, _ := ctx.Value(sameOriginKey{}).(bool)
	return v
}

// sameOrigin compares scheme and host:port (the default port spelt out or
// not counts the same).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(hostPort(a), hostPort(b))
}

func hostPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return net.JoinHostPort(u.Hostname(), p)
	}
	port := "80"
	if strings.EqualFold(u.Scheme, "https") {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// Response is a completed exchange; Body holds at most the request's Limit.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Do performs req with retries. It returns a Response for every status that
// is not retried (2xx, 3xx that were not followed, 4xx) so callers can act on
// 401/403/404 themselves; an error for transport failures, exhausted retries
// on 5xx, oversize bodies and the deadline.
func (c *Client) Do(ctx context.Context, req Request) (*Response, error) {
	if req.Method == "" {
		req.Method = http.MethodGet
	}
	if err := checkScheme(req.URL); err != nil {
		return nil, c.wrap(req, err)
	}
	var lastErr error
	backoff := c.Backoff
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, req)
		if err == nil && resp.Code < 500 {
			return resp, nil
		}
		if err == nil {
			err = &StatusError{Method: req.Method, URL: req.URL, Code: resp.Code}
		}
		lastErr = err
		if !retryable(err) || attempt >= c.Retries || ctx.Err() != nil {
			break
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
	if ctx.Err() != nil {
		// The overall deadline (or the caller) stopped us: say so, naming the
		// source, and keep the last failure for the diagnosis.
		cause := context.Cause(ctx)
		return nil, fmt.Errorf("%s: %s %s: %w (last error: %v)", c.Source, req.Method, req.URL, cause, lastErr)
	}
	return nil, c.wrap(req, lastErr)
}

func (c *Client) wrap(req Request, err error) error {
	var se *StatusError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %w", c.Source, err)
	}
	return fmt.Errorf("%s: %s %s: %w", c.Source, req.Method, req.URL, err)
}

// once is one attempt, bounded by RequestTimeout including the body.
func (c *Client) once(ctx context.Context, req Request) (*Response, error) {
	actx, cancel := context.WithTimeout(ctx, c.RequestTimeout)
	defer cancel()
	if req.SameOrigin {
		actx = context.WithValue(actx, sameOriginKey{}, true)
	}
	if req.HeadersOnce {
		actx = context.WithValue(actx, headersOnceKey{}, true)
	}
	hreq, err := http.NewRequestWithContext(actx, req.Method, stripFragment(req.URL), nil)
	if err != nil {
		return nil, err
	}
	for k, v := range req.Header {
		hreq.Header[k] = v
	}
	hreq.Header.Set("User-Agent", "provision")
	resp, err := c.http.Do(hreq)
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return nil, &attemptTimeout{d: c.RequestTimeout}
		}
		return nil, err
	}
	defer resp.Body.Close()
	limit := req.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, resp.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		if actx.Err() != nil && ctx.Err() == nil {
			return nil, &attemptTimeout{d: c.RequestTimeout}
		}
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return &Response{Code: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

type attemptTimeout struct{ d time.Duration }

func (e *attemptTimeout) Error() string { return fmt.Sprintf("no answer within %s", e.d) }
func (e *attemptTimeout) Timeout() bool { return true }

// retryable: transport failures and 5xx are worth another try; a body that
// is too large, a bad URL or a cancelled context are not.
func retryable(err error) bool {
	if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupported) || errors.Is(err, context.Canceled) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code >= 500
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return false // an untrusted certificate stays untrusted
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		// Redirect loops and malformed URLs will not heal.
		if strings.Contains(ue.Err.Error(), "redirects") {
			return false
		}
	}
	return true
}

// Get fetches rawURL and returns its body. 404 returns an error matching
// sources.ErrNotFound; other non-2xx statuses are errors.
func (c *Client) Get(ctx context.Context, rawURL string, header http.Header, limit int64) ([]byte, error) {
	req := Request{URL: rawURL, Header: header, Limit: limit}
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp.Code < 200 || resp.Code > 299 {
		return nil, c.wrap(req, &StatusError{Method: http.MethodGet, URL: rawURL, Code: resp.Code})
	}
	return resp.Body, nil
}

// GetPinned fetches a kernel-command-line URL, verifying an optional
// "#sha256=<hex>" fragment against the body.
func (c *Client) GetPinned(ctx context.Context, rawURL string, limit int64) ([]byte, error) {
	sum, err := Pin(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", c.Source, rawURL, err)
	}
	body, err := c.Get(ctx, rawURL, nil, limit)
	if err != nil {
		return nil, err
	}
	if sum != nil {
		got := sha256.Sum256(body)
		if subtle.ConstantTimeCompare(got[:], sum) != 1 {
			return nil, fmt.Errorf("%s: %s: %w: got %x", c.Source, rawURL, ErrChecksum, got)
		}
	}
	return body, nil
}

// Pin returns the digest of a "#sha256=<hex>" fragment, nil when the URL has
// none, or an error for a malformed pin (an unverifiable pin must not be
// silently ignored).
func Pin(rawURL string) ([]byte, error) {
	i := strings.IndexByte(rawURL, '#')
	if i < 0 {
		return nil, nil
	}
	frag := rawURL[i+1:]
	val, ok := strings.CutPrefix(frag, "sha256=")
	if !ok {
		if strings.Contains(frag, "=") {
			algo, _, _ := strings.Cut(frag, "=")
			return nil, fmt.Errorf("unsupported checksum %q in URL fragment (only sha256)", algo)
		}
		return nil, nil
	}
	sum, err := hex.DecodeString(val)
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("malformed sha256 pin %q: want 64 hex digits", val)
	}
	return sum, nil
}

func stripFragment(u string) string {
	if i := strings.IndexByte(u, '#'); i >= 0 {
		return u[:i]
	}
	return u
}

// checkScheme accepts http and https; tftp and others get a clear message.
func checkScheme(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("no host in URL")
		}
		return nil
	case "tftp":
		return fmt.Errorf("%w: tftp is not supported yet; serve the file over http or https", ErrUnsupported)
	case "":
		return fmt.Errorf("%w: no scheme (want http:// or https://)", ErrUnsupported)
	}
	return fmt.Errorf("%w: %q (want http or https)", ErrUnsupported, u.Scheme)
}

// Lines splits a metadata listing into non-empty trimmed lines.
func Lines(b []byte) []string {
	var out []string
	for _, l := range bytes.Split(b, []byte("\n")) {
		if s := strings.TrimSpace(string(l)); s != "" {
			out = append(out, s)
		}
	}
	return out
}
