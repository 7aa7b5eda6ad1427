package ec2

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provision-dev/provision/sources"
	"github.com/provision-dev/provision/sources/fetch"
)

// imds is a fake metadata service, strict about IMDSv2 the way AWS is when
// HttpTokens=required.
type imds struct {
	mu          sync.Mutex
	tokenStatus int  // 0: issue tokens; else answer the PUT with this code
	v1Allowed   bool // serve GETs without a token
	expireAfter int  // a token dies after this many GETs (0: never)
	userData    string
	noUserData  bool
	tokens      map[string]int
	n           int
	puts        int
	tokenlessOK int // GETs served without a token
	status500   int // answer the first N GETs with 500
}

func (m *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		m.puts++
		if m.tokenStatus != 0 {
			w.WriteHeader(m.tokenStatus)
			return
		}
		if r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "21600" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		m.n++
		tok := "tok" + string(rune('a'+m.n))
		if m.tokens == nil {
			m.tokens = map[string]int{}
		}
		m.tokens[tok] = 0
		io.WriteString(w, tok)
		return
	}
	if r.Method != http.MethodGet {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if m.status500 > 0 {
		m.status500--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	tok := r.Header.Get("X-aws-ec2-metadata-token")
	if tok == "" {
		if !m.v1Allowed {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		m.tokenlessOK++
	} else {
		uses, ok := m.tokens[tok]
		if !ok || (m.expireAfter > 0 && uses >= m.expireAfter) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		m.tokens[tok] = uses + 1
	}
	files := map[string]string{
		"/latest/meta-data/instance-id":                                             "i-0123456789abcdef0\n",
		"/latest/meta-data/local-hostname":                                          "ip-10-0-0-5.ec2.internal",
		"/latest/meta-data/public-keys/":                                            "0=alice\n1=bob",
		"/latest/meta-data/public-keys/0/openssh-key":                               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice\n",
		"/latest/meta-data/public-keys/1/openssh-key":                               "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBob bob",
		"/latest/meta-data/network/interfaces/macs/":                                "0e:49:61:0f:c3:11/\n",
		"/latest/meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/":              "device-number\nlocal-ipv4s\nmac\nipv4-associations/\n",
		"/latest/meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/device-number": "0",
		"/latest/meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/local-ipv4s":   "10.0.0.5\n10.0.0.6",
		"/latest/meta-data/network/interfaces/macs/0e:49:61:0f:c3:11/mac":           "0e:49:61:0f:c3:11",
	}
	if !m.noUserData {
		files["/latest/user-data"] = m.userData
	}
	body, ok := files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, body)
}

func newSource(t *testing.T, h http.Handler) *Source {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := New(srv.URL + "/")
	s.Client = fetch.New("ec2", fetch.Options{RequestTimeout: time.Second, Deadline: 5 * time.Second, Retries: 3, Backoff: time.Millisecond})
	return s
}

func metaOf(t *testing.T, docs []sources.Document) MetaData {
	t.Helper()
	for _, d := range docs {
		if d.Kind == sources.KindMetaData {
			var m MetaData
			if err := json.Unmarshal(d.Data, &m); err != nil {
				t.Fatalf("meta-data is not JSON: %v\n%s", err, d.Data)
			}
			return m
		}
	}
	t.Fatal("no meta-data document")
	return MetaData{}
}

func TestIMDSv2Required(t *testing.T) {
	m := &imds{userData: "#cloud-config\nhostname: x\n"}
	s := newSource(t, m)
	docs, err := s.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d documents", len(docs))
	}
	if docs[0].Kind != sources.KindMetaData || docs[1].Kind != sources.KindUserData {
		t.Fatalf("kinds: %s, %s", docs[0].Kind, docs[1].Kind)
	}
	if string(docs[1].Data) != m.userData {
		t.Errorf("user-data %q", docs[1].Data)
	}
	if want := "ec2:" + strings.TrimSuffix(s.Base(), "/"); docs[1].Origin.Source != want || docs[1].Origin.File != "latest/user-data" {
		t.Errorf("origin %+v", docs[1].Origin)
	}
	md := metaOf(t, docs)
	if md.InstanceID != "i-0123456789abcdef0" || md.LocalHostname != "ip-10-0-0-5.ec2.internal" {
		t.Errorf("meta-data %+v", md)
	}
	if len(md.PublicKeys) != 2 || !strings.Contains(md.PublicKeys[1], "bob") {
		t.Errorf("keys %q", md.PublicKeys)
	}
	nic := md.Network.Interfaces.MACs["0e:49:61:0f:c3:11"]
	if nic["device-number"] != "0" || nic["mac"] != "0e:49:61:0f:c3:11" {
		t.Errorf("nic %v", nic)
	}
	if ips, _ := nic["local-ipv4s"].([]any); len(ips) != 2 {
		t.Errorf("local-ipv4s %v", nic["local-ipv4s"])
	}
	if _, ok := nic["ipv4-associations/"]; ok {
		t.Error("sub-directory fetched as a leaf")
	}
	if m.tokenlessOK != 0 {
		t.Error("a GET went out without a token")
	}
}

func TestTokenRefetchOn401(t *testing.T) {
	m := &imds{expireAfter: 2, userData: "ud"}
	docs, err := newSource(t, m).Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.puts < 2 {
		t.Errorf("token fetched %d times; want a re-fetch after 401", m.puts)
	}
	if metaOf(t, docs).InstanceID == "" {
		t.Error("no instance-id")
	}
}

func TestTokenRefetchIsBounded(t *testing.T) {
	// Every token dies immediately: give up instead of looping.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.WriteString(w, "t")
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	_, err := newSource(t, h).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("want 401 error, got %v", err)
	}
}

func TestIMDSDisabled(t *testing.T) {
	m := &imds{tokenStatus: http.StatusForbidden, v1Allowed: true}
	_, err := newSource(t, m).Fetch(context.Background())
	if !errors.Is(err, ErrDisabled) {
		t.Fatalf("want ErrDisabled, got %v", err)
	}
	if m.tokenlessOK != 0 {
		t.Error("fell back to v1 although IMDS is disabled")
	}
}

func TestV1OnlyClone(t *testing.T) {
	for _, code := range []int{http.StatusNotFound, http.StatusMethodNotAllowed} {
		m := &imds{tokenStatus: code, v1Allowed: true, noUserData: true}
		docs, err := newSource(t, m).Fetch(context.Background())
		if err != nil {
			t.Fatalf("%d: %v", code, err)
		}
		if len(docs) != 1 || docs[0].Kind != sources.KindMetaData {
			t.Fatalf("%d: want meta-data only (404 user-data = none), got %d docs", code, len(docs))
		}
		if m.tokenlessOK == 0 {
			t.Errorf("%d: no v1 GETs", code)
		}
	}
}

func TestRetried500(t *testing.T) {
	m := &imds{status500: 2, userData: "x"}
	if _, err := newSource(t, m).Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestInstanceIDRequired(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			io.WriteString(w, "t")
			return
		}
		http.NotFound(w, r)
	})
	_, err := newSource(t, h).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "instance-id") {
		t.Fatalf("got %v", err)
	}
}

func TestGarbageListingRejected(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/latest/api/token":
			io.WriteString(w, "t")
		case "/latest/meta-data/instance-id":
			io.WriteString(w, "i-1")
		case "/latest/meta-data/public-keys/":
			io.WriteString(w, "../../../etc=x\n")
		default:
			http.NotFound(w, r)
		}
	})
	_, err := newSource(t, h).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bad entry") {
		t.Fatalf("got %v", err)
	}
}

func TestNeverAnswers(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	s := New(srv.URL)
	s.Client = fetch.New("ec2", fetch.Options{RequestTimeout: 50 * time.Millisecond, Deadline: 300 * time.Millisecond, Retries: 50, Backoff: 5 * time.Millisecond})
	_, err := s.Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "source ec2 timed out") {
		t.Fatalf("got %v", err)
	}
}

func TestOnEC2(t *testing.T) {
	cases := []struct {
		name string
		f    sources.Facts
		want bool
	}{
		{"xen hypervisor uuid", sources.Facts{HypervisorUUID: "ec2e1916-9099-7caf-fd21-012345abcdef"}, true},
		{"hvm same order", sources.Facts{DMI: map[string]string{"product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF"}}, true},
		{"hvm swapped order", sources.Facts{DMI: map[string]string{"product_uuid": "45E12AEC-DCD1-B213-94ED-012345ABCDEF"}}, true},
		{"nitro vendor", sources.Facts{DMI: map[string]string{"sys_vendor": "Amazon EC2"}}, true},
		{"plain qemu", sources.Facts{DMI: map[string]string{"sys_vendor": "QEMU", "product_uuid": "4f1b3c1e-1a2b-4c3d-9e8f-0123456789ab"}}, false},
		{"xen not ec2", sources.Facts{HypervisorUUID: "a1b2c3d4-0000-0000-0000-000000000000"}, false},
		{"garbage uuid", sources.Facts{DMI: map[string]string{"product_uuid": "not-a-uuid"}}, false},
		{"nothing", sources.Facts{}, false},
	}
	for _, c := range cases {
		if got, why := OnEC2(&c.f); got != c.want {
			t.Errorf("%s: got %v (%s)", c.name, got, why)
		}
	}
	if ok, _ := OnEC2(nil); ok {
		t.Error("nil facts")
	}
}

func TestHugeUserDataCut(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/latest/api/token":
			io.WriteString(w, "t")
		case "/latest/user-data":
			chunk := make([]byte, 1<<20)
			for range 100 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	})
	_, err := newSource(t, h).Fetch(context.Background())
	if !errors.Is(err, fetch.ErrTooLarge) || !strings.Contains(err.Error(), "/latest/user-data") {
		t.Fatalf("got %v", err)
	}
}

func TestGarbageToken(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "\n\n")
	})
	_, err := newSource(t, h).Fetch(context.Background())
	if err == nil || !strings.Contains(err.Error(), "malformed token") {
		t.Fatalf("got %v", err)
	}
}
