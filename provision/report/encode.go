package report

import (
	"math"
	"strconv"
	"time"

	"github.com/provision-dev/provision/provision/jsonenc"
)

// appendReport writes r as json.MarshalIndent(r, "", "  ") does, byte for
// byte (a differential test and a fuzz target hold it to that), without
// reflection: encoding/json builds its encoders on first use, which costs a
// fresh process half a millisecond here and tens of milliseconds in an
// emulated VM, twice a run (the target's copy and --report).
func appendReport(b []byte, r *Report) []byte {
	e := objEncoder{b: b, depth: 0}
	e.open()
	e.key("version")
	e.b = strconv.AppendInt(e.b, int64(r.Version), 10)
	e.optString("kind", r.Kind)
	e.optString("path", r.Path)
	e.str("status", r.Status)
	e.optString("result", r.Result)
	e.optString("reason", r.Reason)
	e.optString("instance_id", r.InstanceID)
	e.optString("instance_id_from", r.InstanceIDFrom)
	e.optString("boot", r.Boot)
	e.optString("snapshot", r.Snapshot)
	e.optTime("started", r.Started)
	if r.Finished != nil {
		e.key("finished")
		e.b = appendTime(e.b, *r.Finished)
	}
	e.key("duration_seconds")
	e.b = appendDuration(e.b, r.Duration)
	e.key("sources")
	e.array(len(r.Sources), r.Sources == nil, func(i int) { e.source(&r.Sources[i]) })
	e.key("documents")
	e.array(len(r.Documents), r.Documents == nil, func(i int) { e.document(&r.Documents[i]) })
	e.optStrings("target", r.Target)
	e.optString("diff", r.Diff)
	e.key("modules")
	e.array(len(r.Modules), r.Modules == nil, func(i int) { e.module(r.Modules[i]) })
	e.optStrings("warnings", r.Warnings)
	if r.Error != nil {
		e.key("error")
		e.errorObj(r.Error)
	}
	if len(r.Errors) > 0 {
		e.key("errors")
		e.array(len(r.Errors), false, func(i int) { e.errorObj(r.Errors[i]) })
	}
	e.close()
	return e.b
}

// objEncoder appends indented JSON objects and arrays: first tells whether
// the current container has had a member yet.
type objEncoder struct {
	b     []byte
	depth int
	first bool
}

func (e *objEncoder) newline() {
	e.b = append(e.b, '\n')
	for i := 0; i < e.depth; i++ {
		e.b = append(e.b, ' ', ' ')
	}
}

func (e *objEncoder) open() {
	e.b = append(e.b, '{')
	e.depth++
	e.first = true
}

// close ends an object; an empty one is "{}".
func (e *objEncoder) close() {
	e.depth--
	if !e.first {
		e.newline()
	}
	e.b = append(e.b, '}')
	e.first = false
}

// member starts the next member of an object or element of an array.
func (e *objEncoder) member() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
	e.newline()
}

func (e *objEncoder) key(k string) {
	e.member()
	e.b = jsonenc.AppendString(e.b, k)
	e.b = append(e.b, ':', ' ')
}

func (e *objEncoder) str(k, v string) {
	e.key(k)
	e.b = jsonenc.AppendString(e.b, v)
}

func (e *objEncoder) optString(k, v string) {
	if v != "" {
		e.str(k, v)
	}
}

func (e *objEncoder) optTime(k string, t time.Time) {
	if !t.IsZero() {
		e.key(k)
		e.b = appendTime(e.b, t)
	}
}

func (e *objEncoder) optStrings(k string, v []string) {
	if len(v) > 0 {
		e.key(k)
		e.array(len(v), false, func(i int) { e.b = jsonenc.AppendString(e.b, v[i]) })
	}
}

// array writes n elements with elem, "[]" when there are none and "null"
// for a nil slice, as encoding/json does.
func (e *objEncoder) array(n int, isNil bool, elem func(i int)) {
	if isNil {
		e.b = append(e.b, "null"...)
		return
	}
	if n == 0 {
		e.b = append(e.b, '[', ']')
		return
	}
	e.b = append(e.b, '[')
	e.depth++
	e.first = true
	for i := 0; i < n; i++ {
		e.member()
		elem(i)
	}
	e.depth--
	e.newline()
	e.b = append(e.b, ']')
	e.first = false
}

func (e *objEncoder) source(s *Source) {
	e.open()
	e.str("name", s.Name)
	e.str("presence", s.Presence)
	e.optString("location", s.Location)
	e.key("documents")
	e.b = strconv.AppendInt(e.b, int64(s.Documents), 10)
	e.optString("error", s.Error)
	e.optString("reason", s.Reason)
	e.close()
}

func (e *objEncoder) document(d *Document) {
	e.open()
	e.str("origin", d.Origin)
	e.str("kind", d.Kind)
	e.key("size")
	e.b = strconv.AppendInt(e.b, int64(d.Size), 10)
	e.optString("sha256", d.SHA256)
	e.close()
}

func (e *objEncoder) module(m *Module) {
	if m == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.open()
	e.str("name", m.Name)
	e.optTime("started", m.Started)
	e.key("duration_seconds")
	e.b = appendDuration(e.b, m.Duration)
	e.str("result", m.Result)
	e.key("steps")
	e.array(len(m.Steps), m.Steps == nil, func(i int) { e.step(m.Steps[i]) })
	e.close()
}

func (e *objEncoder) step(s *Step) {
	if s == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.open()
	e.str("action", s.Action)
	e.str("target", s.Target)
	e.optString("detail", s.Detail)
	e.optString("origin", s.Origin)
	e.optTime("started", s.Started)
	e.key("duration_seconds")
	e.b = appendDuration(e.b, s.Duration)
	e.str("result", s.Result)
	if s.Error != nil {
		e.key("error")
		e.errorObj(s.Error)
	}
	e.optStrings("output", s.Output)
	e.close()
}

func (e *objEncoder) errorObj(x *Error) {
	if x == nil {
		e.b = append(e.b, "null"...)
		return
	}
	e.open()
	e.optString("origin", x.Origin)
	e.optString("module", x.Module)
	e.str("message", x.Message)
	e.close()
}

// appendDuration is Duration.MarshalJSON's text.
func appendDuration(b []byte, d Duration) []byte {
	s := time.Duration(d).Seconds()
	return strconv.AppendFloat(b, math.Round(s*1e6)/1e6, 'f', 6, 64)
}

// appendTime is time.Time.MarshalJSON's text: RFC 3339 with nanoseconds,
// quoted (the report's times are always in range).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
