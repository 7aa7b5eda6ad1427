package sourcesaccept

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPd6ajE3z4jbOk0vkiISRttemzUYqKm7TA6Mdvrvxxnd"

// netLimit bounds a run against a test server; the deadline tests set the
// per-source deadline far below it.
const netLimit = 60 * time.Second

// imds is an EC2 instance metadata service: IMDSv2 (token required on
// every GET) unless v1, and a token that expires after the first GET so
// the client must fetch a new one on the 401.
type imds struct {
	mu       sync.Mutex
	v1       bool
	disabled bool
	tokens   int
	current  string
	gets     int
	log      []string
}

func (s *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, r.Method+" "+r.URL.Path)
	if r.URL.Path == "/latest/api/token" {
		switch {
		case r.Method != http.MethodPut:
			http.Error(w, "", http.StatusMethodNotAllowed)
		case s.disabled:
			http.Error(w, "", http.StatusForbidden)
		case s.v1:
			http.NotFound(w, r)
		case r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") == "":
			http.Error(w, "missing ttl", http.StatusBadRequest)
		default:
			s.tokens++
			s.current = "token-" + strings.Repeat("x", s.tokens)
			w.Write([]byte(s.current))
		}
		return
	}
	if !s.v1 {
		if r.Header.Get("X-aws-ec2-metadata-token") != s.current {
			http.Error(w, "", http.StatusUnauthorized)
			return
		}
		s.gets++
		if s.gets == 1 {
			s.current = "expired" // the next GET gets a 401
		}
	}
	body, ok := map[string]string{
		"/latest/user-data":                                                         "#cloud-config\nusers:\n  - name: dave\n    groups: [wheel]\nwrite_files:\n  - path: /etc/from-imds\n    content: ec2\n",
		"/latest/meta-data/instance-id":                                             "i-0123456789abcdef0",
		"/latest/meta-data/local-hostname":                                          "ip-10-0-0-5.ec2.internal",
		"/latest/meta-data/public-keys/":                                            "0=my-key",
		"/latest/meta-data/public-keys/0/openssh-key":                               testKey + " my-key\n",
		"/latest/meta-data/network/interfaces/macs/":                                "0a:00:00:00:00:01/",
		"/latest/meta-data/network/interfaces/macs/0a:00:00:00:00:01/":              "device-number\nlocal-ipv4s\n",
		"/latest/meta-data/network/interfaces/macs/0a:00:00:00:00:01/device-number": "0",
		"/latest/meta-data/network/interfaces/macs/0a:00:00:00:00:01/local-ipv4s":   "10.0.0.5",
	}[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write([]byte(body))
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEC2IMDSv2(t *testing.T) {
	s := &imds{}
	url := serve(t, s)
	r := runCLI(t, netLimit, nil, "--dry-run", "--source", "ec2:"+url)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	golden(t, "ec2.plan", portRE.ReplaceAllString(r.stdout, "127.0.0.1:PORT"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens != 2 {
		t.Errorf("%d tokens fetched, want 2 (the first expired with a 401)\n%s", s.tokens, strings.Join(s.log, "\n"))
	}
}

func TestEC2V1Clone(t *testing.T) {
	url := serve(t, &imds{v1: true})
	r := runCLI(t, netLimit, nil, "--dry-run", "--source", "ec2:"+url)
	if r.code != 0 || !strings.Contains(r.stdout, "users: create user dave") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestEC2Disabled(t *testing.T) {
	s := &imds{disabled: true}
	url := serve(t, s)
	r := runCLI(t, netLimit, nil, "--dry-run", "--source", "ec2:"+url)
	if r.code != 1 || !strings.Contains(r.stderr, "disabled") || !strings.Contains(r.stderr, "source ec2") {
		t.Fatalf("exit %d, want 1 naming ec2 and saying disabled\nstderr:\n%s", r.code, r.stderr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.log {
		if strings.HasPrefix(l, "GET") {
			t.Errorf("v1 fallback after a 403: %s", l)
		}
	}
}

func TestOpenStackMetadataService(t *testing.T) {
	files := map[string]string{
		"/openstack":                           "2012-08-10\n2013-04-04\nlatest\n",
		"/openstack/latest/meta_data.json":     `{"uuid": "6a1c4b1e-0000-4000-8000-000000000001", "hostname": "os-host.novalocal", "name": "os-host", "public_keys": {"k": "` + testKey + ` k"}}`,
		"/openstack/latest/user_data":          "#cloud-config\nusers:\n  - name: erin\nwrite_files:\n  - path: /etc/from-openstack\n    content: os\n",
		"/openstack/latest/network_data.json":  `{"links": [], "networks": [], "services": []}`,
		"/openstack/2013-04-04/meta_data.json": `{"uuid": "old", "hostname": "old"}`,
	}
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := files[r.URL.Path]; ok {
			w.Write([]byte(b))
			return
		}
		http.NotFound(w, r)
	}))
	r := runCLI(t, netLimit, nil, "--dry-run", "--source", "openstack:"+url)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	golden(t, "openstack.plan", portRE.ReplaceAllString(r.stdout, "127.0.0.1:PORT"))
}

// nocloud:URL without a trailing slash gets one; meta-data answers 500
// twice before it works (retried within the deadline).
func TestNoCloudNet(t *testing.T) {
	var mu sync.Mutex
	var got []string
	fails := 2
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.URL.Path)
		switch r.URL.Path {
		case "/seed/meta-data":
			if fails > 0 {
				fails--
				http.Error(w, "busy", http.StatusInternalServerError)
				return
			}
			w.Write([]byte("instance-id: iid-net-1\nlocal-hostname: net-host\n"))
		case "/seed/user-data":
			w.Write([]byte("#cloud-config\nusers:\n  - name: frank\n    ssh_authorized_keys: [\"" + testKey + " frank\"]\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	r := runCLI(t, netLimit, nil, "--dry-run", "--source", "nocloud:"+url+"/seed")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	golden(t, "nocloud-net.plan", portRE.ReplaceAllString(r.stdout, "127.0.0.1:PORT"))
	mu.Lock()
	defer mu.Unlock()
	want := "/seed/network-config /seed/meta-data /seed/meta-data /seed/meta-data /seed/user-data /seed/vendor-data"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("requests %q, want %q (cloud-init's order, 500s retried)", s, want)
	}
}

// A service that accepts the connection and never answers: the run ends at
// the per-source deadline (PROVISION_SOURCE_DEADLINE, sources/fetch) with
// an error naming the source.
func TestNeverAnsweringServiceHitsDeadline(t *testing.T) {
	release := make(chan struct{})
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	for _, tc := range []struct{ spec, source string }{
		{"ec2:" + url, "ec2"},
		{"openstack:" + url, "openstack"},
		{"nocloud:" + url + "/", "nocloud"},
		{url + "/user-data", "url"},
	} {
		t.Run(tc.source, func(t *testing.T) {
			r := runCLI(t, netLimit, []string{"PROVISION_SOURCE_DEADLINE=2s"}, "--dry-run", "--source", tc.spec)
			if r.timedOut {
				t.Fatalf("still running after %s: the per-source deadline did not hold\nstderr:\n%s", netLimit, r.stderr)
			}
			if want := "source " + tc.source + " timed out: overall deadline of 2s exceeded"; r.code != 1 || !strings.Contains(r.stderr, want) {
				t.Errorf("exit %d, want 1 and %q in:\n%s", r.code, want, r.stderr)
			}
		})
	}
}
