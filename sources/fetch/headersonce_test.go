package fetch

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A HeadersOnce request sends its headers to the URL it names and to no
// redirect, even one on the same host (Ignition's httpHeaders rule); the
// User-Agent stays. Without it, Go forwards them on the same host.
func TestHeadersOnce(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = r.Header.Clone()
		mu.Unlock()
		if r.URL.Path == "/from" {
			http.Redirect(w, r, "/to", http.StatusFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	defer srv.Close()
	c := fast("test")
	for _, once := range []bool{true, false} {
		resp, err := c.Do(context.Background(), Request{URL: srv.URL + "/from", Header: http.Header{"X-Token": {"t"}}, HeadersOnce: once})
		if err != nil || resp.Code != 200 {
			t.Fatalf("once=%v: %v %+v", once, err, resp)
		}
		mu.Lock()
		from, to := seen["/from"], seen["/to"]
		mu.Unlock()
		if from.Get("X-Token") != "t" || (to.Get("X-Token") != "") != !once || to.Get("User-Agent") != "provision" {
			t.Errorf("once=%v: /from got %v, /to got %v", once, from, to)
		}
	}
}
