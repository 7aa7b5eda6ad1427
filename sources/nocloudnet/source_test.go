package nocloudnet

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

func seedServer(t *testing.T, files map[string]string) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var order []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		order = append(order, r.URL.Path)
		mu.Unlock()
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, b)
	}))
	t.Cleanup(srv.Close)
	return srv, &order
}

func quick(s *Source) *Source {
	s.Client = fetch.New("nocloud", fetch.Options{RequestTimeout: time.Second, Deadline: 3 * time.Second, Retries: 1, Backoff: time.Millisecond})
	return s
}

func TestFetchHTTP(t *testing.T) {
	srv, order := seedServer(t, map[string]string{
		"/seed/meta-data":      "instance-id: from-seed\nlocal-hostname: seedhost\n",
		"/seed/user-data":      "#cloud-config\n{}\n",
		"/seed/vendor-data":    "#cloud-config\n{}\n",
		"/seed/network-config": "version: 2\n",
	})
	// No trailing slash: one is appended.
	l, ok := ParseWords([]string{"ds=nocloud;s=" + srv.URL + "/seed;h=override"})
	if !ok {
		t.Fatal("line not parsed")
	}
	l.From = "cmdline"
	s := quick(New(l, ""))
	if s.Detect(nil) != sources.NeedsNetwork {
		t.Fatalf("detect %v", s.Detect(nil))
	}
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := "/seed/network-config,/seed/meta-data,/seed/user-data,/seed/vendor-data"
	if strings.Join(*order, ",") != wantOrder {
		t.Errorf("fetch order %v", *order)
	}
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, string(d.Kind)+"@"+d.Origin.File)
		if d.Origin.Source != "nocloud:"+srv.URL+"/seed" {
			t.Errorf("origin %+v", d.Origin)
		}
	}
	if got := strings.Join(kinds, ","); got != "network-config@network-config,meta-data@meta-data,meta-data@cmdline,user-data@user-data,vendor-data@vendor-data" {
		t.Errorf("documents %s", got)
	}
	var o map[string]string
	if err := json.Unmarshal(docs[2].Data, &o); err != nil || o["local-hostname"] != "override" || len(o) != 1 {
		t.Errorf("override doc %s (%v)", docs[2].Data, err)
	}
}

func TestRequiredMissingNamed(t *testing.T) {
	srv, _ := seedServer(t, map[string]string{"/s/meta-data": "instance-id: x\n"})
	s := quick(NewSeed(srv.URL + "/s/"))
	_, err := s.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "user-data is missing") {
		t.Fatalf("got %v", err)
	}
}

func TestLocalSeed(t *testing.T) {
	prefix := t.TempDir()
	dir := filepath.Join(prefix, "var/seed")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "meta-data"), []byte("instance-id: local\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "user-data"), []byte("#cloud-config\n"), 0o644)
	for _, seed := range []string{"/var/seed", "file:///var/seed/"} {
		l, _ := ParseWords([]string{"ds=nocloud;s=" + seed})
		s := New(l, prefix)
		if s.Detect(nil) != sources.Present {
			t.Errorf("%s: detect %v", seed, s.Detect(nil))
		}
		docs, err := s.Fetch(context.Background())
		if err != nil {
			t.Fatalf("%s: %v", seed, err)
		}
		if len(docs) != 2 || docs[0].Kind != sources.KindMetaData || docs[1].Kind != sources.KindUserData {
			t.Fatalf("%s: %+v", seed, docs)
		}
	}
	l, _ := ParseWords([]string{"ds=nocloud;s=/nonexistent/"})
	if _, err := New(l, prefix).Fetch(context.Background()); err == nil || !strings.Contains(err.Error(), "meta-data is missing") {
		t.Errorf("missing local seed: %v", err)
	}
}

func TestOverridesOnly(t *testing.T) {
	l, _ := ParseWords([]string{"ds=nocloud;i=iid-7;h=host7"})
	l.From = "cmdline"
	s := New(l, "")
	if s.Detect(nil) != sources.Present {
		t.Fatalf("detect %v", s.Detect(nil))
	}
	docs, err := s.Fetch(context.Background())
	if err != nil || len(docs) != 1 || docs[0].Kind != sources.KindMetaData {
		t.Fatalf("%+v %v", docs, err)
	}
	l, _ = ParseWords([]string{"ds=nocloud"})
	if New(l, "").Detect(nil) != sources.Absent {
		t.Error("bare ds=nocloud should give nothing to fetch")
	}
}

func TestUnsupportedSeed(t *testing.T) {
	for _, seed := range []string{"ftp://h/seed/", "tftp://h/x/", "relative/path", "http://[::1"} {
		_, err := NewSeed(seed).Fetch(context.Background())
		if err == nil {
			t.Errorf("%s accepted", seed)
		}
	}
}
