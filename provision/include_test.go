package provision

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

func docsOf(userData string) []sources.Document {
	return []sources.Document{{Origin: config.Origin{Source: "test", File: "user-data"}, Kind: sources.KindUserData, Data: []byte(userData)}}
}

// includeServer serves an included cloud-config at /cc, an include of it at
// /more, and an include of itself at /loop; it counts the requests.
func includeServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("/cc", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("#cloud-config\nhostname: included-host\n"))
	})
	mux.HandleFunc("/more", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("#include\n" + srv.URL + "/cc\n"))
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		// Two includes of itself: a fan-out the count limit ends.
		w.Write([]byte("#include\n" + srv.URL + "/loop\n" + srv.URL + "/loop\n"))
	})
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &hits
}

// A boot run fetches #include and text/x-include-url user-data over HTTP
// and applies what it includes; a dry run fetches nothing and says so.
func TestRunFetchesIncludes(t *testing.T) {
	srv, hits := includeServer(t)
	mime := "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n" +
		"--B\nContent-Type: text/x-include-url\n\n" + srv.URL + "/more\n--B--\n"
	for name, ud := range map[string]string{
		"#include":           "#include\n" + srv.URL + "/cc\n",
		"text/x-include-url": mime,
	} {
		hits.Store(0)
		seed := seedDir(t, ud)
		dry := Run(context.Background(), Options{Sources: []sources.Source{dir.New(seed)}, DryRun: true})
		if dry.Err != nil || hits.Load() != 0 || !strings.Contains(strings.Join(dry.Warnings, "\n"), "does not fetch included user-data") {
			t.Errorf("%s: dry run: err %v, %d requests, warnings %q", name, dry.Err, hits.Load(), dry.Warnings)
		}

		root := newTarget(t)
		res := runOn(root, dir.New(seed))
		if res.Err != nil {
			t.Fatalf("%s: run failed: %v", name, res.Err)
		}
		if h, _ := os.ReadFile(filepath.Join(root, "etc/hostname")); strings.TrimSpace(string(h)) != "included-host" {
			t.Errorf("%s: /etc/hostname %q, want the included host name", name, h)
		}
	}
}

// Includes are bounded: a self-including URL ends at the depth or count
// limit with an error, and other schemes than http(s) are refused.
func TestIncludeLimits(t *testing.T) {
	srv, hits := includeServer(t)
	fetch := includeFetcher(false)
	for _, ud := range []string{"#include\n" + srv.URL + "/loop\n", "#include file:///etc/shadow\n"} {
		_, err := ParseDocuments(context.Background(), docsOf(ud), ParseOptions{FetchInclude: fetch})
		if err == nil {
			t.Errorf("%q accepted", ud)
		}
	}
	if n := hits.Load(); n == 0 || n > maxIncludes {
		t.Errorf("%d requests for the loop, want 1..%d", n, maxIncludes)
	}
}
