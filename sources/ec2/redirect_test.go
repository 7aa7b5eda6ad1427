package ec2

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestTokenNotSentOffHost: a metadata service that redirects a GET to
// another host must not hand that host the IMDSv2 session token (cloud-init
// and the AWS SDKs do not follow such redirects with it).
func TestTokenNotSentOffHost(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		for _, h := range []string{tokenHeader, tokenTTLHeader} {
			if v := r.Header.Get(h); v != "" {
				leaked = append(leaked, h+": "+v)
			}
		}
		w.Write([]byte("i-stolen"))
	}))
	defer other.Close()
	m := &imds{}
	s := newSource(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/latest/meta-data/instance-id" || r.URL.Path == "/latest/api/token" && r.Method == http.MethodPut && m.puts > 0 {
			http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return
		}
		m.ServeHTTP(w, r)
	}))
	_, err := s.Fetch(context.Background())
	if err == nil {
		t.Error("a redirect off the metadata address was accepted")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) > 0 {
		t.Errorf("the other host received %v", leaked)
	}
}
