package url

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

func TestFetchKinds(t *testing.T) {
	body := `{"ignition":{"version":"3.4.0"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte(body))
	pin := "#sha256=" + hex.EncodeToString(sum[:])
	cases := []struct {
		param string
		path  string
		kind  sources.Kind
		err   error
	}{
		{ParamIgnition, "/config.ign", sources.KindIgnition, nil},
		{ParamProvision, "/cfg" + pin, sources.KindUnknown, nil},
		{ParamCombustion, "/script#sha256=" + strings.Repeat("ab", 32), "", fetch.ErrChecksum},
		{ParamProvision, "/missing", "", sources.ErrNotFound},
	}
	for _, c := range cases {
		s, err := New(c.param, srv.URL+c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		docs, err := s.Fetch(context.Background())
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: want %v, got %v", c.path, c.err, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		if len(docs) != 1 || docs[0].Kind != c.kind || string(docs[0].Data) != body {
			t.Fatalf("%s: %+v", c.path, docs)
		}
		if strings.Contains(docs[0].Origin.Source, "#") {
			t.Errorf("pin leaked into origin: %s", docs[0].Origin.Source)
		}
	}
}

func TestNewRejects(t *testing.T) {
	for _, u := range []string{"tftp://10.0.0.1/x", "ftp://h/x", "file:///x", "http:///nohost", "http://h/x#sha256=zz", "::"} {
		if _, err := New(ParamProvision, u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	_, err := New(ParamProvision, "tftp://10.0.0.1/x")
	if !errors.Is(err, fetch.ErrUnsupported) || !strings.Contains(err.Error(), "tftp is not supported") {
		t.Errorf("tftp: %v", err)
	}
}
