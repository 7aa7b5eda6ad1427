package report

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The bounds of a step's output in the report: enough lines to show why a
// package manager or a script failed, never enough for a chatty program
// (a `zypper dup` prints thousands) to bloat the report. The first lines
// are kept as well as the last: package managers report an unreadable
// repository or an unresolvable request at the start, failed scriptlets
// at the end.
const (
	OutputHeadLines = 10
	OutputTailLines = 30
	OutputLineSize  = 512
)

// Tail is an io.Writer that keeps the first OutputHeadLines and the last
// OutputTailLines lines written to it, each cut to OutputLineSize bytes; a
// last line without a newline counts once Lines is called. The zero value
// is ready.
type Tail struct {
	head, tail []string
	partial    []byte
	dropped    int
}

// Write never fails.
func (t *Tail) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.partial = appendBounded(t.partial, p)
			break
		}
		t.partial = appendBounded(t.partial, p[:i])
		t.push(string(t.partial))
		t.partial = t.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func appendBounded(b, p []byte) []byte {
	if room := OutputLineSize - len(b); room < len(p) {
		p = p[:max(room, 0)]
	}
	return append(b, p...)
}

func (t *Tail) push(l string) {
	// Cut on a rune boundary, and drop the carriage returns of progress
	// bars.
	l = strings.ToValidUTF8(strings.TrimRight(l, "\r"), "\uFFFD")
	for len(l) > OutputLineSize {
		_, size := utf8.DecodeLastRuneInString(l)
		l = l[:len(l)-size]
	}
	if len(t.head) < OutputHeadLines {
		t.head = append(t.head, l)
		return
	}
	if len(t.tail) == OutputTailLines {
		copy(t.tail, t.tail[1:])
		t.tail = t.tail[:OutputTailLines-1]
		t.dropped++
	}
	t.tail = append(t.tail, l)
}

// Lines returns the kept lines, with a note where lines were dropped
// between the first and the last; nil when nothing was written.
func (t *Tail) Lines() []string {
	if len(t.partial) > 0 {
		t.push(string(t.partial))
		t.partial = t.partial[:0]
	}
	if len(t.head) == 0 {
		return nil
	}
	out := make([]string, 0, len(t.head)+len(t.tail)+1)
	out = append(out, t.head...)
	if t.dropped > 0 {
		out = append(out, "("+strconv.Itoa(t.dropped)+" lines not kept)")
	}
	return append(out, t.tail...)
}
