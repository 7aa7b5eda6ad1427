package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// snapperInfo is the content of /.snapshots/N/info.xml as snapper writes it.
type snapperInfo struct {
	Type        string
	Num         uint64
	Date        time.Time // UTC
	Description string
	Cleanup     string
	Userdata    []kv // in order, as written
}

type kv struct{ Key, Value string }

// userdata markers.
const (
	// inProgressKey is transactional-update's marker of an open
	// snapshot, so its tools and a reader of `snapper list` judge ours
	// the same way; legacyInProgressKey is what earlier releases wrote.
	inProgressKey       = "transactional-update-in-progress"
	legacyInProgressKey = "provision-in-progress"
	snapperDate         = "2006-01-02 15:04:05"
)

// inProgress reports whether the snapshot carries an in-progress marker.
func (s snapperInfo) inProgress() bool {
	_, a := s.get(inProgressKey)
	_, b := s.get(legacyInProgressKey)
	return a || b
}

func (s snapperInfo) get(key string) (string, bool) {
	for _, u := range s.Userdata {
		if u.Key == key {
			return u.Value, true
		}
	}
	return "", false
}

func (s *snapperInfo) drop(key string) {
	out := s.Userdata[:0]
	for _, u := range s.Userdata {
		if u.Key != key {
			out = append(out, u)
		}
	}
	s.Userdata = out
}

// marshal writes the exact layout snapper 0.10 produces (two-space indent,
// elements in this order, empty ones left out), so diffs against snapper's
// own files stay empty.
func (s snapperInfo) marshal() []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?>\n<snapshot>\n")
	elem := func(indent, name, value string) {
		b.WriteString(indent + "<" + name + ">")
		b.WriteString(escapeInfoText(value))
		b.WriteString("</" + name + ">\n")
	}
	elem("  ", "type", s.Type)
	elem("  ", "num", strconv.FormatUint(s.Num, 10))
	elem("  ", "date", s.Date.UTC().Format(snapperDate))
	if s.Description != "" {
		elem("  ", "description", s.Description)
	}
	if s.Cleanup != "" {
		elem("  ", "cleanup", s.Cleanup)
	}
	for _, u := range s.Userdata {
		b.WriteString("  <userdata>\n")
		elem("    ", "key", u.Key)
		elem("    ", "value", u.Value)
		b.WriteString("  </userdata>\n")
	}
	b.WriteString("</snapshot>\n")
	return b.Bytes()
}

// maxInfoXML bounds what we parse; snapper's files are a few hundred bytes.
const maxInfoXML = 1 << 20

// parseSnapperInfo reads an info.xml. name is used in error messages.
func parseSnapperInfo(name string, data []byte) (snapperInfo, error) {
	if len(data) > maxInfoXML {
		return snapperInfo{}, fmt.Errorf("%s: info.xml larger than %d bytes", name, maxInfoXML)
	}
	raw, err := parseInfoXML(data)
	if err != nil {
		off := len(data)
		var xe *infoXMLError
		if errors.As(err, &xe) {
			off = xe.off
		}
		line, col := position(data, off)
		return snapperInfo{}, fmt.Errorf("%s:%d:%d: %w", name, line, col, err)
	}
	num, err := strconv.ParseUint(raw.Num, 10, 64)
	if err != nil {
		return snapperInfo{}, fmt.Errorf("%s: bad <num> %q", name, raw.Num)
	}
	s := snapperInfo{Type: raw.Type, Num: num, Description: raw.Description, Cleanup: raw.Cleanup}
	if raw.Date != "" {
		t, err := time.ParseInLocation(snapperDate, raw.Date, time.UTC)
		if err != nil {
			return snapperInfo{}, fmt.Errorf("%s: bad <date> %q", name, raw.Date)
		}
		s.Date = t
	}
	s.Userdata = raw.Userdata
	return s, nil
}

// escapeInfoText escapes text content as libxml2 writes it for snapper:
// the markup characters, a carriage return (which a parser would turn into
// a newline) and, the document declaring no encoding, every character
// beyond ASCII; a character XML cannot hold becomes U+FFFD, so the file
// stays well-formed.
func escapeInfoText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '\r':
			b.WriteString("&#13;")
		case !isXMLChar(r):
			b.WriteString("&#xFFFD;")
		case r >= utf8.RuneSelf:
			// libxml2 writes a document without a declared encoding
			// in ASCII: every other character as a reference.
			fmt.Fprintf(&b, "&#x%X;", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func position(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}
