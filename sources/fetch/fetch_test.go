package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
)

// fast keeps tests quick; the behaviour, not the timing, is under test.
func fast(name string) *Client {
	return New(name, Options{RequestTimeout: 200 * time.Millisecond, Deadline: 2 * time.Second, Retries: 3, Backoff: time.Millisecond})
}

func TestGetOK(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "yes" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer srv.Close()
	c := fast("test")
	b, err := c.Get(context.Background(), srv.URL+"/x", http.Header{"X-Test": {"yes"}}, 0)
	if err != nil || string(b) != "hello" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestNotFoundIsErrNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := fast("test").Get(context.Background(), srv.URL+"/missing", nil, 0)
	if !errors.Is(err, sources.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
	if !strings.Contains(err.Error(), "/missing") {
		t.Errorf("error does not name the URL: %v", err)
	}
}

func TestOtherStatusIsNotNotFound(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
	}))
	defer srv.Close()
	_, err := fast("test").Get(context.Background(), srv.URL, nil, 0)
	var se *StatusError
	if err == nil || errors.Is(err, sources.ErrNotFound) || !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("want 403 StatusError, got %v", err)
	}
}

func TestRetries5xxThenSucceeds(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	b, err := fast("test").Get(context.Background(), srv.URL, nil, 0)
	if err != nil || string(b) != "ok" {
		t.Fatalf("got %q, %v", b, err)
	}
	if n.Load() != 3 {
		t.Errorf("attempts = %d, want 3", n.Load())
	}
}

func TestRetriesAreBounded(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, err := fast("test").Get(context.Background(), srv.URL, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("want 500 error, got %v", err)
	}
	if n.Load() != 4 {
		t.Errorf("attempts = %d, want 1+3 retries", n.Load())
	}
}

func TestNo4xxRetry(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	fast("test").Get(context.Background(), srv.URL, nil, 0)
	if n.Load() != 1 {
		t.Errorf("a 404 was retried: %d attempts", n.Load())
	}
}

func TestConnectionRefusedRetriedAndBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = fast("test").Get(context.Background(), "http://"+addr+"/", nil, 0)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("want an error naming %s, got %v", addr, err)
	}
}

// A server that accepts and never answers: the per-source deadline ends it
// and the error names the source.
func TestNeverAnsweringServerHitsDeadline(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c := New("ec2", Options{RequestTimeout: 50 * time.Millisecond, Deadline: 300 * time.Millisecond, Retries: 100, Backoff: 10 * time.Millisecond})
	ctx, cancel := c.WithDeadline(context.Background())
	defer cancel()
	_, err := c.Get(ctx, srv.URL+"/latest", nil, 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline error, got %v", err)
	}
	var de *DeadlineError
	if !errors.As(err, &de) || de.Source != "ec2" {
		t.Fatalf("error does not carry the source deadline: %v", err)
	}
	for _, want := range []string{"ec2", "timed out", "/latest"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A slow body (headers sent, body never finishes) is bounded too.
func TestStalledBodyBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c := New("openstack", Options{RequestTimeout: 50 * time.Millisecond, Deadline: time.Second, Retries: 1, Backoff: time.Millisecond})
	_, err := c.Get(context.Background(), srv.URL, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("want attempt timeout, got %v", err)
	}
}

func TestBodyCut(t *testing.T) {
	const size = 100 << 20
	for _, announce := range []bool{true, false} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if announce {
				w.Header().Set("Content-Length", "104857600")
			}
			chunk := make([]byte, 64<<10)
			for sent := 0; sent < size; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
		c := New("test", Options{RequestTimeout: 10 * time.Second, Retries: -1})
		_, err := c.Get(context.Background(), srv.URL+"/user-data", nil, DefaultLimit)
		srv.Close()
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("announce=%v: want ErrTooLarge, got %v", announce, err)
		}
		if !strings.Contains(err.Error(), "/user-data") {
			t.Errorf("error does not name the URL: %v", err)
		}
	}
}

func TestSchemes(t *testing.T) {
	c := fast("url")
	for _, u := range []string{"tftp://10.0.0.1/config", "ftp://x/y", "file:///etc/passwd", "/relative", "http://"} {
		_, err := c.Get(context.Background(), u, nil, 0)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.HasPrefix(u, "tftp") && !strings.Contains(err.Error(), "tftp is not supported") {
			t.Errorf("tftp message unclear: %v", err)
		}
	}
}

func TestTLSVerified(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }))
	defer srv.Close()
	// Untrusted certificate: refused, and not retried forever.
	_, err := New("url", Options{Retries: -1}).Get(context.Background(), srv.URL, nil, 0)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("want a certificate error, got %v", err)
	}
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	b, err := New("url", Options{RootCAs: pool}).Get(context.Background(), srv.URL, nil, 0)
	if err != nil || string(b) != "secure" {
		t.Fatalf("trusted: %q, %v", b, err)
	}
}

func TestPinned(t *testing.T) {
	body := "#!/bin/sh\necho hi\n"
	sum := sha256.Sum256([]byte(body))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.String(), "#") || strings.Contains(r.URL.String(), "sha256") {
			t.Errorf("fragment sent to server: %s", r.URL)
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	c := fast("url")
	good := srv.URL + "/s#sha256=" + hex.EncodeToString(sum[:])
	if b, err := c.GetPinned(context.Background(), good, 0); err != nil || string(b) != body {
		t.Fatalf("good pin: %q %v", b, err)
	}
	bad := srv.URL + "/s#sha256=" + strings.Repeat("00", 32)
	if _, err := c.GetPinned(context.Background(), bad, 0); !errors.Is(err, ErrChecksum) {
		t.Fatalf("bad pin: %v", err)
	}
	if _, err := c.GetPinned(context.Background(), srv.URL+"/s#sha256=xyz", 0); err == nil {
		t.Fatal("malformed pin accepted")
	}
	if _, err := c.GetPinned(context.Background(), srv.URL+"/s#sha512=ab", 0); err == nil {
		t.Fatal("unsupported algorithm accepted")
	}
	if _, err := c.GetPinned(context.Background(), srv.URL+"/s#section", 0); err != nil {
		t.Fatalf("plain fragment: %v", err)
	}
}

func TestPutReturnsStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPut {
			w.WriteHeader(405)
			return
		}
		w.WriteHeader(403)
	}))
	defer srv.Close()
	resp, err := fast("ec2").Do(context.Background(), Request{Method: http.MethodPut, URL: srv.URL})
	if err != nil || resp.Code != 403 {
		t.Fatalf("got %+v, %v", resp, err)
	}
}

func TestLines(t *testing.T) {
	got := Lines([]byte("a\n\n b \r\nc"))
	if strings.Join(got, ",") != "a,b,c" {
		t.Fatalf("got %q", got)
	}
}

func TestEnvOverrides(t *testing.T) {
	for _, tc := range []struct {
		deadline, timeout string
		wantDeadline      time.Duration
		wantTimeout       time.Duration
	}{
		{"", "", DefaultDeadline, DefaultRequestTimeout},
		{"3", "1500ms", 3 * time.Second, 1500 * time.Millisecond},
		{"2s", "", 2 * time.Second, DefaultRequestTimeout},
		{"garbage", "-1s", DefaultDeadline, DefaultRequestTimeout},
	} {
		t.Setenv(EnvDeadline, tc.deadline)
		t.Setenv(EnvRequestTimeout, tc.timeout)
		c := New("x", Options{})
		if c.Deadline != tc.wantDeadline || c.RequestTimeout != tc.wantTimeout {
			t.Errorf("env %q/%q: deadline %v timeout %v, want %v %v", tc.deadline, tc.timeout, c.Deadline, c.RequestTimeout, tc.wantDeadline, tc.wantTimeout)
		}
		// Explicit options win over the environment.
		if c := New("x", Options{Deadline: time.Minute}); c.Deadline != time.Minute {
			t.Errorf("env %q: explicit deadline overridden: %v", tc.deadline, c.Deadline)
		}
	}
}
