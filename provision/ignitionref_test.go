package provision

import (
	"compress/gzip"
	"context"
	"crypto/sha512"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/provision-dev/provision/provision/config"
	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/dir"
)

const refChild = `{"ignition": {"version": "3.2.0"}, "storage": {"files": [{"path": "/etc/from-ref", "contents": {"source": "data:,ok"}}]}}`

// refServer serves an Ignition config at /cfg only to a request carrying
// the bearer token, gzipped at /child.gz, redirects /redir to /plain, and
// records the Authorization header each path received.
func refServer(t *testing.T) (*httptest.Server, func(path string) []string) {
	t.Helper()
	var mu sync.Mutex
	seen := map[string][]string{}
	const child = refChild
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Get("Authorization"))
		mu.Unlock()
		switch r.URL.Path {
		case "/cfg":
			if r.Header.Get("Authorization") != "Bearer s3cr3t" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			w.Write([]byte(child))
		case "/redir":
			http.Redirect(w, r, "/plain", http.StatusFound)
		case "/plain":
			w.Write([]byte(child))
		case "/child.gz":
			zw := gzip.NewWriter(w)
			zw.Write([]byte(child))
			zw.Close()
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func(path string) []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen[path]...)
	}
}

func ignitionDoc(s string) []sources.Document {
	return []sources.Document{{Origin: config.Origin{Source: "test", File: "config.ign"}, Kind: sources.KindIgnition, Data: []byte(s)}}
}

func mergeRef(url, headers string) string {
	return `{"ignition": {"version": "3.4.0", "config": {"merge": [{"source": "` + url + `"` + headers + `}]}}}`
}

// A boot run fetches ignition.config.merge over HTTP with its httpHeaders;
// a redirect is followed without them, as Ignition does; a dry run fetches
// nothing and warns.
func TestIgnitionReferencesFetched(t *testing.T) {
	srv, seen := refServer(t)
	auth := `, "httpHeaders": [{"name": "Authorization", "value": "Bearer s3cr3t"}]`

	cfg, err := ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/cfg", auth)), ParseOptions{FetchConfig: configFetcher(false)})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Files) != 1 || cfg.Files[0].Path != "/etc/from-ref" {
		t.Errorf("files %+v, want the merged config's", cfg.Files)
	}

	if _, err := ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/redir", auth)), ParseOptions{FetchConfig: configFetcher(false)}); err != nil {
		t.Fatal(err)
	}
	if got := seen("/redir"); len(got) != 1 || got[0] != "Bearer s3cr3t" {
		t.Errorf("/redir got Authorization %q", got)
	}
	if got := seen("/plain"); len(got) != 1 || got[0] != "" {
		t.Errorf("the redirect target got Authorization %q, want none", got)
	}

	_, err = ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/cfg", "")), ParseOptions{FetchConfig: configFetcher(false)})
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || !strings.Contains(err.Error(), "test:config.ign:1:") {
		t.Errorf("without the header: %v, want an HTTP 401 naming the reference", err)
	}

	// gzip undone, then the hash of the decompressed config checked.
	sum := sha512.Sum512([]byte(refChild))
	verified := fmt.Sprintf(`, "compression": "gzip", "verification": {"hash": "sha512-%x"}`, sum)
	if cfg, err := ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/child.gz", verified)), ParseOptions{FetchConfig: configFetcher(false)}); err != nil || len(cfg.Files) != 1 {
		t.Errorf("gzip and sha512: %v, files %+v", err, cfg)
	}
	bad := strings.Replace(verified, fmt.Sprintf("%x", sum[:4]), "00000000", 1)
	if _, err := ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/child.gz", bad)), ParseOptions{FetchConfig: configFetcher(false)}); err == nil || !strings.Contains(err.Error(), "contents do not match sha512-00000000") {
		t.Errorf("hash mismatch: %v", err)
	}

	before := len(seen("/cfg"))
	cfg, err = ParseDocuments(context.Background(), ignitionDoc(mergeRef(srv.URL+"/cfg", auth)), ParseOptions{FetchConfig: configFetcher(true)})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen("/cfg")) != before || len(cfg.Files) != 0 || len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Message, "does not fetch referenced Ignition configs") {
		t.Errorf("dry run: %d requests, files %+v, warnings %v", len(seen("/cfg"))-before, cfg.Files, cfg.Warnings)
	}
}

// A boot run applies a merged config and a remote file fetched with its
// header; the header's value is a secret the report masks.
func TestIgnitionRunMergesAndMasksHeaders(t *testing.T) {
	const token = "tok-s3cr3t-value"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/child.ign":
			w.Write([]byte(`{"ignition": {"version": "3.0.0"}, "storage": {"directories": [{"path": "/srv/merged"}]}}`))
		case r.URL.Path == "/blob" && r.Header.Get("X-Token") == token:
			w.Write([]byte("blob\n"))
		default:
			http.Error(w, "no", http.StatusForbidden)
		}
	}))
	defer srv.Close()
	seed := t.TempDir()
	os.MkdirAll(filepath.Join(seed, "ignition"), 0o755)
	cfg := `{"ignition": {"version": "3.4.0", "config": {"merge": [{"source": "` + srv.URL + `/child.ign"}]}},
"storage": {"files": [{"path": "/srv/blob", "contents": {"source": "` + srv.URL + `/blob", "httpHeaders": [{"name": "X-Token", "value": "` + token + `"}]}}]}}`
	os.WriteFile(filepath.Join(seed, "ignition/config.ign"), []byte(cfg), 0o644)
	root := newTarget(t)
	res := runOn(root, dir.New(seed))
	if res.Err != nil {
		t.Fatalf("run failed: %v", res.Err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "srv/blob")); string(b) != "blob\n" {
		t.Errorf("/srv/blob = %q", b)
	}
	if st, err := os.Stat(filepath.Join(root, "srv/merged")); err != nil || !st.IsDir() {
		t.Errorf("/srv/merged from the merged config: %v", err)
	}
	if got := res.Report.Mask("header " + token); strings.Contains(got, token) {
		t.Errorf("the report does not mask the header value: %q", got)
	}
}

// A file given as it is has no kind of its own: the run and its report say
// the kind it was parsed as, not "unknown".
func TestFileSourceReportsSniffedKind(t *testing.T) {
	f := filepath.Join(t.TempDir(), "config.ign")
	os.WriteFile(f, []byte(refChild), 0o644)
	res := runOn(newTarget(t), dir.NewFile(f))
	if res.Err != nil {
		t.Fatalf("run failed: %v", res.Err)
	}
	if len(res.Documents) != 1 || res.Documents[0].Kind != string(sources.KindIgnition) {
		t.Fatalf("documents %+v, want one of kind %q", res.Documents, sources.KindIgnition)
	}
	data, err := res.Report.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"kind": "ignition"`) {
		t.Errorf("the report does not name the document's kind:\n%s", data)
	}
}
