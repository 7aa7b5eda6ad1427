package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/provision-dev/provision/provision/config"
)

// FetchFunc retrieves the body of an http: or https: URL, sending header
// with the request (not with a redirect it answers with).
type FetchFunc func(ctx context.Context, url string, header http.Header) ([]byte, error)

// MaxRemoteSize bounds a fetched file: the initrd holds it in memory before
// writing it, and a hostile server must not be able to exhaust that.
const MaxRemoteSize = 256 << 20

// fetchClient drops every header on a redirect, as Ignition does: the
// headers a config gives (httpHeaders) may be credentials for the URL it
// names alone, and Go would forward most of them.
var fetchClient = &http.Client{
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		req.Header = http.Header{}
		return nil
	},
}

// HTTPFetch is the default FetchFunc: one GET with a timeout, any status but
// 200 and 204 is an error (Ignition's rule), and bodies over MaxRemoteSize
// are refused.
func HTTPFetch(ctx context.Context, u string, header http.Header) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxRemoteSize+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > MaxRemoteSize {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", u, MaxRemoteSize)
	}
	return data, nil
}

// headerOf turns the model's headers into a request's.
func headerOf(hs []config.HTTPHeader) http.Header {
	if len(hs) == 0 {
		return nil
	}
	h := http.Header{}
	for _, x := range hs {
		h.Add(x.Name, x.Value)
	}
	return h
}

// sourceKind classifies a File.Source.
func sourceKind(src string) (string, error) {
	scheme, _, ok := strings.Cut(src, ":")
	if !ok {
		return "", fmt.Errorf("source %q has no URL scheme", src)
	}
	switch s := strings.ToLower(scheme); s {
	case "data", "http", "https":
		return s, nil
	case "s3", "arn", "gs", "tftp":
		// The Ignition parser refuses these first, with the reason; a
		// model built otherwise gets the same answer here.
		return "", fmt.Errorf("source scheme %q is not supported: cloud storage needs credentials and an SDK, tftp a protocol, that provision does not have at first boot; use a presigned https:// URL (data, http, https are supported)", scheme)
	default:
		return "", fmt.Errorf("source scheme %q is not supported (data, http, https are)", scheme)
	}
}

// DecodeDataURL decodes an RFC 2397 data: URL ("data:[<mediatype>][;base64],<data>").
// The data part is percent-decoded; with ;base64 it is then base64-decoded
// (padding optional, as browsers and Ignition's decoder accept).
func DecodeDataURL(u string) ([]byte, error) {
	rest, ok := cutPrefixFold(u, "data:")
	if !ok {
		return nil, errors.New("not a data: URL")
	}
	header, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("data: URL without a comma")
	}
	raw, err := url.PathUnescape(payload)
	if err != nil {
		return nil, fmt.Errorf("data: URL: %w", err)
	}
	isBase64 := false
	for i, param := range strings.Split(header, ";") {
		if i > 0 && strings.EqualFold(strings.TrimSpace(param), "base64") {
			isBase64 = true
		}
	}
	if !isBase64 {
		return []byte(raw), nil
	}
	clean := strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, raw)
	data, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		if data, err2 := base64.RawStdEncoding.DecodeString(strings.TrimRight(clean, "=")); err2 == nil {
			return data, nil
		}
		return nil, fmt.Errorf("data: URL: invalid base64: %w", err)
	}
	return data, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// checkHash parses Ignition's "sha256-<hex>" / "sha512-<hex>".
func checkHash(spec string) (newHash func() hash.Hash, want []byte, err error) {
	algo, hexSum, ok := strings.Cut(spec, "-")
	if !ok {
		return nil, nil, fmt.Errorf("hash %q: want sha256-<hex> or sha512-<hex>", spec)
	}
	switch algo {
	case "sha256":
		newHash = sha256.New
	case "sha512":
		newHash = sha512.New
	default:
		return nil, nil, fmt.Errorf("hash %q: unsupported function %q (sha256 and sha512 are)", spec, algo)
	}
	want, err = hex.DecodeString(hexSum)
	if err != nil || len(want) != newHash().Size() {
		return nil, nil, fmt.Errorf("hash %q: not a %s hex digest", spec, algo)
	}
	return newHash, want, nil
}

// verify checks data against an Ignition verification hash ("" = none).
func verify(spec string, data []byte) error {
	if spec == "" {
		return nil
	}
	newHash, want, err := checkHash(spec)
	if err != nil {
		return err
	}
	h := newHash()
	h.Write(data)
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return fmt.Errorf("content hash mismatch: got %x, want %s", got, spec)
	}
	return nil
}
