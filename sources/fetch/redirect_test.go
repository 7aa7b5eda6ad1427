package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// TestSameOriginRedirect: a SameOrigin request follows redirects on its own
// host and port, and returns (does not follow) one to any other, so its
// headers never reach that host; other requests follow as before.
func TestSameOriginRedirect(t *testing.T) {
	var leaked atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Secret") != "" {
			leaked.Add(1)
		}
		w.Write([]byte("other"))
	}))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/local":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/away":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/here":
			w.Write([]byte("here"))
		}
	}))
	defer srv.Close()
	c := fast("test")
	ctx := context.Background()
	h := http.Header{"X-Secret": {"s"}}
	resp, err := c.Do(ctx, Request{URL: srv.URL + "/local", Header: h, SameOrigin: true})
	if err != nil || resp.Code != 200 || string(resp.Body) != "here" {
		t.Fatalf("same-host redirect: %v %+v", err, resp)
	}
	resp, err = c.Do(ctx, Request{URL: srv.URL + "/away", Header: h, SameOrigin: true})
	if err != nil || resp.Code != http.StatusFound {
		t.Fatalf("off-host redirect: want the 302 back, got %v %+v", err, resp)
	}
	if n := leaked.Load(); n != 0 {
		t.Fatalf("the other host got the header %d times", n)
	}
	resp, err = c.Do(ctx, Request{URL: srv.URL + "/away"})
	if err != nil || string(resp.Body) != "other" {
		t.Fatalf("plain request: %v %+v", err, resp)
	}
}
