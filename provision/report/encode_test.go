package report

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The hand-written encoder must write what encoding/json writes.
func checkSameAsEncodingJSON(t *testing.T, r *Report) {
	t.Helper()
	want, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := appendReport(nil, r)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendReport differs from encoding/json:\n got: %s\nwant: %s", got, want)
	}
}

func TestAppendReportMatchesEncodingJSON(t *testing.T) {
	zone := time.FixedZone("", -(3*3600 + 30*60))
	started := time.Date(2026, 12, 7, 12, 30, 5, 123456789, time.UTC)
	finished := time.Date(2026, 12, 7, 9, 0, 6, 0, zone)
	odd := "tab\tnl\nret\r bs\b ff\f nul\x00 esc\x1b del\x7f <a href=\"x\">&amp;</a> back\\slash \u2028\u2029 é 日本 bad\xff\xfe utf8 \xe2\x82"
	full := &Report{
		Version: Version, Kind: KindResult, Path: "/run/x", Status: "done", Result: ResultDone,
		Reason: odd, InstanceID: "iid-1", InstanceIDFrom: "nocloud:meta-data:1:1", Boot: "first boot",
		Snapshot: "42", Started: started, Finished: &finished, Duration: Duration(1234567891),
		Sources:   []Source{{Name: "nocloud", Presence: "present", Location: "/dev/sr0", Documents: 2, Error: odd, Reason: "r"}, {Name: "x", Presence: "absent"}},
		Documents: []Document{{Origin: "nocloud:/dev/sr0:user-data", Kind: "cloud-config", Size: 1234, SHA256: "ab"}, {Origin: odd}},
		Target:    []string{"/etc: a directory", ""},
		Diff:      "--- a\n+++ b\n",
		Modules: []*Module{
			{Name: "users", Started: started, Duration: Duration(-5), Result: "done", Steps: []*Step{
				{Action: "create user", Target: "alice", Detail: odd, Origin: "o:1:2", Started: finished, Duration: Duration(999), Result: "done",
					Error: &Error{Origin: "o", Module: "users", Message: odd}, Output: []string{"line 1", odd, ""}},
				nil,
				{Action: "", Target: "", Result: ""},
			}},
			nil,
			{Name: "empty", Steps: []*Step{}},
			{Name: "nil steps"},
		},
		Warnings: []string{odd, "w"},
		Error:    &Error{Message: ""},
		Errors:   []*Error{{Message: "a"}, nil, {Origin: "x", Message: "b"}},
	}
	for name, r := range map[string]*Report{
		"new":   New(func() time.Time { return started }),
		"zero":  {},
		"full":  full,
		"empty": {Sources: []Source{}, Documents: []Document{}, Modules: []*Module{}, Target: []string{}, Warnings: []string{}, Errors: []*Error{}},
	} {
		t.Run(name, func(t *testing.T) { checkSameAsEncodingJSON(t, r) })
	}
	// And through JSON(), as every report is written: redacted, with a newline.
	rep := New(func() time.Time { return started })
	rep.AddSecret("hunter22")
	rep.AddSource(Source{Name: "nocloud", Presence: "present", Documents: 1})
	rep.AddDocument("nocloud:user-data", "cloud-config", []byte("#cloud-config\n"))
	s := rep.BeginStep("users", "set password", "bob", "password hunter22 <&>", "o:1:1")
	rep.EndStep(s, nil, false)
	rep.Finish(ResultDone, nil, "")
	got, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(rep.redacted(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, append(want, '\n')) {
		t.Fatalf("JSON() differs from encoding/json:\n got: %s\nwant: %s", got, want)
	}
	if strings.Contains(string(got), "hunter22") {
		t.Fatalf("the secret is in the report: %s", got)
	}
}

// FuzzAppendReport builds reports from arbitrary bytes (strings, counts,
// nils, times) and holds the encoder to encoding/json on each.
func FuzzAppendReport(f *testing.F) {
	f.Add([]byte("hello\x00world<&>\xff\xe2\x80\xa8"), int64(1234567890), uint8(3))
	f.Add([]byte(""), int64(0), uint8(0))
	f.Add([]byte("a\nb\tc\"d\\e"), int64(-1), uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, nanos int64, shape uint8) {
		parts := strings.Split(string(data), "\x00")
		str := func(i int) string { return parts[i%len(parts)] }
		num := func(i int) int {
			if len(data) < 8 {
				return i * int(shape)
			}
			return int(int32(binary.LittleEndian.Uint32(data[i%(len(data)-3):])))
		}
		// Times within what time.Time's JSON accepts: years 0..9999.
		at := time.Unix(0, nanos%(250*365*24*3600*1e9)).In(time.FixedZone("", num(1)%(14*3600)/60*60))
		var fin *time.Time
		if shape&1 != 0 {
			fin = &at
		}
		r := &Report{Version: num(0), Kind: str(0), Path: str(1), Status: str(2), Result: str(3), Reason: str(4),
			InstanceID: str(5), InstanceIDFrom: str(6), Boot: str(7), Snapshot: str(8), Started: at, Finished: fin,
			Duration: Duration(nanos), Diff: str(9)}
		if shape&2 != 0 {
			r.Started = time.Time{}
		}
		n := int(shape>>2) % 5
		for i := 0; i < n; i++ {
			r.Sources = append(r.Sources, Source{Name: str(i), Presence: str(i + 1), Location: str(i + 2), Documents: num(i), Error: str(i + 3), Reason: str(i + 4)})
			r.Documents = append(r.Documents, Document{Origin: str(i), Kind: str(i + 1), Size: num(i + 1), SHA256: str(i + 2)})
			r.Target = append(r.Target, str(i+5))
			r.Warnings = append(r.Warnings, str(i+6))
			m := &Module{Name: str(i), Started: at, Duration: Duration(num(i)), Result: str(i + 1)}
			for j := 0; j < n; j++ {
				st := &Step{Action: str(j), Target: str(j + 1), Detail: str(j + 2), Origin: str(j + 3), Duration: Duration(num(j) * 1000), Result: str(j + 4)}
				if (i+j)%2 == 0 {
					st.Error = &Error{Origin: str(j), Module: str(j + 1), Message: str(j + 2)}
					st.Output = parts
					st.Started = at
				}
				m.Steps = append(m.Steps, st)
			}
			r.Modules = append(r.Modules, m)
			if i%2 == 1 {
				r.Errors = append(r.Errors, &Error{Message: str(i)}, nil)
				r.Modules = append(r.Modules, nil)
			}
		}
		if shape&0x80 != 0 {
			r.Error = &Error{Origin: str(1), Message: str(2)}
		}
		checkSameAsEncodingJSON(t, r)
	})
}

// The patterns compile when first needed; each must compile.
func TestRedactionsCompile(t *testing.T) {
	for i, r := range redactions {
		if r.re() == nil || len(r.hints) == 0 {
			t.Fatalf("redaction %d: no pattern or no hints", i)
		}
	}
}

// The hints only skip texts no pattern can match: whatever a pattern
// matches, its hints let through.
func FuzzRedactionHints(f *testing.F) {
	for _, s := range []string{"password: x", "api-Key = 'v'", "\"client_secret\" :\"s\"", "authorize keys (1 key for alice)",
		"pa\u017f\u017fword=1", "\u212aEY: v", "token\t=\tabc", "$6$salt$hash", "Authorization: Bearer x", "https://u:p@h/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lower := fold(s)
		for i, r := range redactions {
			if !r.re().MatchString(s) {
				continue
			}
			if !containsAny(lower, r.hints) || r.assigned && !anyAssigned(lower, r.hints) {
				t.Fatalf("redaction %d matches %q, but its hints skip it", i, s)
			}
		}
	})
}
