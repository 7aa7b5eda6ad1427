package report

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/rootfs"
)

var update = flag.Bool("update", false, "rewrite golden files")

// clock advances 250 ms per reading, so durations are predictable.
func clock() func() time.Time {
	t := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		t = t.Add(250 * time.Millisecond)
		return t
	}
}

func sample(t *testing.T, fail bool) *Report {
	t.Helper()
	r := New(clock())
	r.InstanceID = "iid-local01"
	r.Snapshot = "/.snapshots/2/snapshot"
	r.AddSecret("hunter2-plain")
	r.AddSource(Source{Name: "nocloud", Presence: "present", Location: "/dev/vdb", Documents: 2})
	r.AddSource(Source{Name: "ec2", Presence: "absent"})
	r.AddDocument("nocloud:/dev/vdb:user-data", "cloud-user-data", []byte("#cloud-config\npassword: hunter2-plain\n"))
	r.AddDocument("nocloud:/dev/vdb:meta-data", "meta-data", []byte("instance-id: iid-local01\n"))
	r.AddWarning("nocloud:/dev/vdb:user-data:7:1: unknown key \"foo\"")
	s := r.BeginStep("users", "create user", "alice", "uid 1000", "nocloud:/dev/vdb:user-data:3:5")
	r.EndStep(s, nil, false)
	s = r.BeginStep("users", "set password", "root", "plain-text password", "nocloud:/dev/vdb:user-data:9:3")
	r.EndStep(s, nil, false)
	s = r.BeginStep("system", "set hostname", "node1", "", "nocloud:/dev/vdb:meta-data:2:1")
	r.EndStep(s, nil, true)
	if fail {
		s = r.BeginStep("scripts", "run", "runcmd", "1 command", "nocloud:/dev/vdb:user-data:12:3")
		err := errors.New("nocloud:/dev/vdb:user-data:12:3: runcmd exited with status 3 (chpasswd root:hunter2-plain, hash $6$saltsalt$abcdefghijklmnop)")
		r.SetOutput(s, []string{"[runcmd] setting up", "[runcmd] echo hunter2-plain | chpasswd: failed"})
		r.EndStep(s, err, false)
		r.Finish(ResultRolledBack, err, "nocloud:/dev/vdb:user-data:12:3")
	} else {
		r.Finish(ResultDone, nil, "")
	}
	return r
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGolden(t *testing.T) {
	for _, fail := range []bool{false, true} {
		name := "done"
		if fail {
			name = "rolledback"
		}
		r := sample(t, fail)
		data, err := r.JSON()
		if err != nil {
			t.Fatal(err)
		}
		golden(t, name+".json", data)
		golden(t, name+".log", r.Log())
		var st bytes.Buffer
		FormatStatus(&st, r, true)
		st.WriteString("\n")
		FormatBlame(&st, r)
		golden(t, name+".status", st.Bytes())
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "report.json")
	r := sample(t, true)
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	back, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	want := r.redacted()
	r.mu.Unlock()
	back.now, want.now = nil, nil
	if !reflect.DeepEqual(back.Modules, want.Modules) || !reflect.DeepEqual(back.Documents, want.Documents) ||
		!reflect.DeepEqual(back.Error, want.Error) || back.Status != StatusError || back.Result != ResultRolledBack ||
		!back.Finished.Equal(*want.Finished) || back.Duration != want.Duration {
		t.Fatalf("round trip differs:\n%+v\n%+v", back, want)
	}
	// Written again, it is byte for byte the same file.
	again, _ := back.JSON()
	first, _ := os.ReadFile(p)
	if !bytes.Equal(again, first) {
		t.Fatalf("re-encoded report differs:\n%s\n%s", again, first)
	}
	if ExitCode(back) != 1 || ExitCode(sample(t, false)) != 0 || ExitCode(nil) != 0 {
		t.Fatal("exit codes")
	}
}

func TestNoSecretInOutputs(t *testing.T) {
	r := sample(t, true)
	data, _ := r.JSON()
	log := r.Log()
	for _, secret := range []string{"hunter2-plain", "saltsalt", "abcdefghijklmnop"} {
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(log, []byte(secret)) {
			t.Errorf("%q leaked into the report", secret)
		}
	}
	// The in-memory report is untouched (the engine may still need it).
	if !strings.Contains(r.Error.Message, "hunter2-plain") {
		t.Error("redaction modified the live report")
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"hash $6$rounds=5000$salt$Xy0./abc for root", "hash $6$[REDACTED] for root"},
		{"yescrypt $y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7", "yescrypt $y$[REDACTED]"},
		{"bcrypt $2b$12$abcdefghijklmnopqrstuv", "bcrypt $2b$[REDACTED]"},
		{"price is $6 only", "price is $6 only"},
		{"passwd: s3cret and more", "passwd: [REDACTED] and more"},
		{`{"password":"s3cret","name":"x"}`, `{"password":"[REDACTED]","name":"x"}`},
		{"plain_text_passwd=abc123", "plain_text_passwd=[REDACTED]"},
		{"Authorization: Bearer eyJhbGciOi.x.y", "Authorization: Bearer [REDACTED]"},
		{"X-aws-ec2-metadata-token: AQAEAFx==", "X-aws-ec2-metadata-token: [REDACTED]"},
		{"GET https://user:pa55@example.com/x failed", "GET https://user:[REDACTED]@example.com/x failed"},
		{"key -----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY----- done", "key [REDACTED PRIVATE KEY] done"},
		{"cut -----BEGIN RSA PRIVATE KEY-----\nMIIE", "cut [REDACTED PRIVATE KEY]"},
		{"token=abc; next", "token=[REDACTED]; next"},
		{"user alice: no such group wheel", "user alice: no such group wheel"},
		// A path ending in a key's name is a file, not a key.
		{"back up /etc/passwd: write /etc/.passwd-x: no space left on device", "back up /etc/passwd: write /etc/.passwd-x: no space left on device"},
		{"rename .passwd.tmp /etc/passwd: read-only file system", "rename .passwd.tmp /etc/passwd: read-only file system"},
		{"- password: s3cret", "- password: [REDACTED]"},
		{"[password=s3cret]", "[password=[REDACTED]]"},
		{"chpasswd: s3cret", "chpasswd: s3cret"},
		{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice@host", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice@host"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestKnownSecrets(t *testing.T) {
	red := newRedactor([]string{"ab", "longsecret", "secret", ""})
	if got := red.str("x longsecret y secret z ab"); got != "x [REDACTED] y [REDACTED] z ab" {
		t.Fatalf("got %q", got)
	}
}

func TestWriteTarget(t *testing.T) {
	root, err := rootfs.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := sample(t, false)
	if err := r.WriteTarget(root); err != nil {
		t.Fatal(err)
	}
	js, err := root.ReadFile(TargetJSON)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("target", js); err != nil {
		t.Fatal(err)
	}
	log, err := root.ReadFile(TargetLog)
	if err != nil || !strings.Contains(string(log), "[ OK ] users: create user alice") {
		t.Fatalf("log %q, %v", log, err)
	}
}

func TestWait(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "report.json")

	// Not started, then times out: nil report and the context's error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	got, err := Wait(ctx, p, 10*time.Millisecond)
	cancel()
	if got != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, %v", got, err)
	}

	// Running: Wait keeps polling until the writer finishes.
	r := New(clock())
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	polled := make(chan struct{})
	go func() {
		<-polled
		r.Finish(ResultDone, nil, "")
		r.Write(p)
	}()
	ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// First make sure a running report does not end the wait.
	short, scancel := context.WithTimeout(ctx, 30*time.Millisecond)
	running, err := Wait(short, p, 5*time.Millisecond)
	scancel()
	if running == nil || running.Status != StatusRunning || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("running: got %v, %v", running, err)
	}
	close(polled)
	done, err := Wait(ctx, p, 5*time.Millisecond)
	if err != nil || done.Status != StatusDone {
		t.Fatalf("done: got %+v, %v", done, err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		``, `{`, `{"version":0,"status":"done"}`, `{"version":99,"status":"done"}`,
		`{"version":1,"status":"bogus"}`, `{"version":1,"status":"done","modules":[null]}`,
		`{"version":1,"status":"done","duration_seconds":1e300}`,
		`{"version":1,"status":"done","modules":[{"name":"x","steps":[null]}]}`,
	} {
		if _, err := Parse("r", []byte(in)); err == nil {
			t.Errorf("%q: want an error", in)
		}
	}
}

func TestStatusNotStarted(t *testing.T) {
	var b bytes.Buffer
	FormatStatus(&b, nil, true)
	if b.String() != "status: not started\n" {
		t.Fatalf("got %q", b.String())
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/rolledback.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"version":1,"status":"running"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		var b bytes.Buffer
		FormatStatus(&b, r, true)
		FormatBlame(&b, r)
		FormatLog(&b, r)
		if _, err := r.JSON(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzRedact(f *testing.F) {
	f.Add("password: x $6$abc$def -----BEGIN RSA PRIVATE KEY-----")
	f.Fuzz(func(t *testing.T, s string) {
		out := Redact(s)
		if Redact(out) != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, out, Redact(out))
		}
	})
}

// A run that committed although a step marked non-fatal failed is
// cloud-init's "degraded done": status done, exit status 2, the failed
// step's output in the long form.
func TestDegradedDone(t *testing.T) {
	r := New(clock())
	s := r.BeginStep("users", "create user", "alice", "uid 1000", "nocloud:/dev/vdb:user-data:3:5")
	r.EndStep(s, nil, false)
	s = r.BeginStep("scripts", "run", "runcmd", "2 commands; non-fatal", "nocloud:/dev/vdb:user-data:12:3")
	r.SetOutput(s, []string{"[runcmd] cannot reach the mirror"})
	r.EndStep(s, errors.New("nocloud:/dev/vdb:user-data:12:3: runcmd exited with status 4"), false)
	r.Finish(ResultDone, nil, "")
	if got := ExitCode(r); got != 2 {
		t.Errorf("exit code %d, want 2", got)
	}
	var b bytes.Buffer
	FormatStatus(&b, r, true)
	for _, want := range []string{"status: done\n", "extended_status: degraded done\n", "  | [runcmd] cannot reach the mirror\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status --long lacks %q:\n%s", want, b.String())
		}
	}
	if st := StatusOf(sample(t, false)); st.ExtendedStatus != "" {
		t.Errorf("a clean run is %q", st.ExtendedStatus)
	}
}
