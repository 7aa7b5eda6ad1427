package files

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/provision-dev/provision/modules/rootfs/rootfstest"
	"github.com/provision-dev/provision/provision/config"
)

// A remote source is fetched with its headers; a redirect gets none of
// them (Ignition's rule), and the plan names the headers, never a value.
func TestRemoteHeaders(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get("X-Api-Key")
		mu.Unlock()
		switch r.URL.Path {
		case "/secret":
			if r.Header.Get("X-Api-Key") != "k3y-value" {
				http.Error(w, "denied", http.StatusForbidden)
				return
			}
			w.Write([]byte("private\n"))
		case "/moved":
			http.Redirect(w, r, "/public", http.StatusFound)
		case "/public":
			w.Write([]byte("public\n"))
		}
	}))
	defer srv.Close()
	hdr := []config.HTTPHeader{{Name: "X-Api-Key", Value: "k3y-value"}}
	cfg := &config.Config{Files: []config.File{
		{Origin: origin(1), Path: "/etc/private", Source: srv.URL + "/secret", Headers: hdr},
		{Origin: origin(2), Path: "/etc/public", Source: srv.URL + "/moved", Headers: hdr},
	}}
	root := rootfstest.NewRoot(t, map[string]string{"etc/": ""})
	steps, err := Planner{Fetch: HTTPFetch}.Plan(cfg, root)
	if err != nil {
		t.Fatal(err)
	}
	plan := string(rootfstest.PlanText(steps))
	if !strings.Contains(plan, "with header X-Api-Key") || strings.Contains(plan, "k3y-value") {
		t.Errorf("plan %q: want the header's name and not its value", plan)
	}
	rootfstest.Apply(t, root, steps)
	for p, want := range map[string]string{"etc/private": "private\n", "etc/public": "public\n"} {
		if b, _ := os.ReadFile(filepath.Join(root.Dir, p)); string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	if got["/moved"] != "k3y-value" || got["/public"] != "" {
		t.Errorf("headers received %q: want the key on /moved only", got)
	}
	if _, err := HTTPFetch(context.Background(), srv.URL+"/secret", nil); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("without the header: %v, want 403", err)
	}
}
