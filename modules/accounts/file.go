// Package accounts reads and edits the target's account databases
// (/etc/passwd, /etc/group, /etc/shadow, /etc/gshadow, /etc/subuid,
// /etc/subgid) natively, without shadow-utils, the way shadow-utils' commonio
// layer does: every line that is not a well-formed entry (comments, blank
// lines, NIS "+"/"-" lines, lines with the wrong number of fields) is kept
// byte for byte, and untouched entries are written back exactly as read.
// It also reads login.defs and /etc/default/useradd and allocates IDs the
// way useradd does, so the result matches `useradd --root` for the same
// request. Names (user "alice", group "wheel") are always resolved against
// the TARGET's files, never the host's.
package accounts

import (
	"strconv"
	"strings"
)

// Kind describes one colon-separated account database and the rule that
// tells an entry from a line to carry through verbatim. The rules are
// shadow-utils' (sgetpwent, sgetgrent, sgetspent, sgetsgent, subordinate
// parse): note that "#" is not special there, so "#bob:x:1005:..." is an entry
// named "#bob" whose uid counts as used — we do the same so IDs match useradd.
type Kind struct {
	Path   string // inside the target root
	Fields int    // fields of a complete entry
	valid  func(fields []string) bool
}

// The account databases.
var (
	PasswdKind = Kind{Path: "/etc/passwd", Fields: 7, valid: func(f []string) bool {
		return len(f) == 7 && parseID(f[2]) >= 0 && parseID(f[3]) >= 0
	}}
	// A group line may lack the member field ("name:x:5").
	GroupKind = Kind{Path: "/etc/group", Fields: 4, valid: func(f []string) bool {
		return (len(f) == 4 || len(f) == 3) && parseID(f[2]) >= 0
	}}
	// A shadow line may lack the reserved flag field, or be the old 5-field
	// SVR3.2 format; the numeric fields must be numbers or empty.
	ShadowKind = Kind{Path: "/etc/shadow", Fields: 9, valid: func(f []string) bool {
		if len(f) != 9 && len(f) != 8 && len(f) != 5 {
			return false
		}
		for _, v := range f[2:] {
			if v != "" && !isLong(v) {
				return false
			}
		}
		return true
	}}
	GshadowKind = Kind{Path: "/etc/gshadow", Fields: 4, valid: func(f []string) bool { return len(f) == 4 }}
	SubUIDKind  = Kind{Path: "/etc/subuid", Fields: 3, valid: validSub}
	SubGIDKind  = Kind{Path: "/etc/subgid", Fields: 3, valid: validSub}
)

func validSub(f []string) bool {
	return len(f) == 3 && f[0] != "" && isDigits(f[1]) && isDigits(f[2])
}

// Field indexes.
const (
	PwName, PwPasswd, PwUID, PwGID, PwGecos, PwDir, PwShell = 0, 1, 2, 3, 4, 5, 6
	GrName, GrPasswd, GrGID, GrMem                          = 0, 1, 2, 3
	SpName, SpPwdp, SpLstchg, SpMin, SpMax, SpWarn          = 0, 1, 2, 3, 4, 5
	SpInact, SpExpire, SpFlag                               = 6, 7, 8
	SgName, SgPasswd, SgAdm, SgMem                          = 0, 1, 2, 3
	SubOwner, SubStart, SubCount                            = 0, 1, 2
)

// Line is one line of a database, without its newline. Fields is non-nil
// exactly when the line is an entry; otherwise Text is written back verbatim.
// An entry is serialized as its fields joined with ":", which for an
// unmodified entry is the text that was read.
type Line struct {
	Text   string
	Fields []string
}

// IsEntry reports whether the line is a parsed entry.
func (l *Line) IsEntry() bool { return l.Fields != nil }

// Name is the entry's first field ("" for other lines).
func (l *Line) Name() string {
	if l.Fields == nil {
		return ""
	}
	return l.Fields[0]
}

// Int returns field i as a number (-1 when it is not one).
func (l *Line) Int(i int) int {
	if l.Fields == nil || i >= len(l.Fields) {
		return -1
	}
	return parseID(l.Fields[i])
}

func (l *Line) text() string {
	if l.Fields != nil {
		return strings.Join(l.Fields, ":")
	}
	return l.Text
}

// File is a parsed database.
type File struct {
	Kind  Kind
	Lines []*Line
	// noFinalNewline records that the last line had no newline, so a round
	// trip stays byte-identical.
	noFinalNewline bool
	// ix indexes the entries by name and id, so a run adding thousands of
	// accounts does not scan the file for each lookup and each new id.
	ix *index
	// members holds the member lists AddMember is growing, by line, so n
	// users added to one group cost n set inserts instead of n splits and
	// joins of an ever longer list. The field itself is rewritten from it
	// when the file is serialized, cloned or listed (syncMembers).
	members      map[*Line]*memberSet
	dirtyMembers bool
	// memberParses counts member fields split into a set, for the tests.
	memberParses int
	// sub is the sorted state of a subuid/subgid file (see sortedSub).
	sub *subSorted
}

// memberSet is one member field (group's or gshadow's) being added to.
type memberSet struct {
	field  int
	names  []string
	set    map[string]struct{}
	synced string // the field's text when last read or written from here
	dirty  bool   // names has members the field does not show yet
}

// addMember adds user to the comma-separated member list in field idx of
// entry l unless it is there, reporting whether it was added. The list is
// split once; later adds look the name up in a set and append.
func (f *File) addMember(l *Line, idx int, user string) bool {
	ms := f.members[l]
	if ms == nil || ms.field != idx || (!ms.dirty && l.Fields[idx] != ms.synced) {
		f.memberParses++
		ms = &memberSet{field: idx, names: Members(l.Fields[idx]), set: map[string]struct{}{}, synced: l.Fields[idx]}
		for _, n := range ms.names {
			ms.set[n] = struct{}{}
		}
		if f.members == nil {
			f.members = map[*Line]*memberSet{}
		}
		f.members[l] = ms
	}
	if _, ok := ms.set[user]; ok {
		return false
	}
	ms.set[user] = struct{}{}
	ms.names = append(ms.names, user)
	ms.dirty, f.dirtyMembers = true, true
	return true
}

// syncMembers writes the member lists grown by addMember into their fields.
func (f *File) syncMembers() {
	if f == nil || !f.dirtyMembers {
		return
	}
	for l, ms := range f.members {
		if ms.dirty {
			l.Fields[ms.field] = strings.Join(ms.names, ",")
			ms.synced, ms.dirty = l.Fields[ms.field], false
		}
	}
	f.dirtyMembers = false
}

// index is built on first use and kept up to date by Append; it is
// rebuilt when Lines no longer has the length it was built for (Lines
// changed otherwise). Names and ids of entries are never edited in place.
type index struct {
	lines  int
	nisAt  int                    // the first NIS line, where Append inserts (lines when none)
	byName map[string][]*Line     // every entry of a name, in file order
	byID   map[int]map[int]*Line  // field → id → first entry with it
	ends   map[idRangeKey]*idEnds // newID's scan of the ids in a range
}

type idRangeKey struct{ field, lo, hi int64 }

// idEnds is the lowest and highest id in use within a range, as newID
// computes them (lowest-1 and highest+1, starting at hi and lo).
type idEnds struct{ lowest, highest int64 }

func (f *File) index() *index {
	if f.ix != nil && f.ix.lines == len(f.Lines) {
		return f.ix
	}
	ix := &index{lines: len(f.Lines), nisAt: len(f.Lines), byName: map[string][]*Line{}, byID: map[int]map[int]*Line{}, ends: map[idRangeKey]*idEnds{}}
	for i, l := range f.Lines {
		if l.Fields == nil && isNIS(l.Text) && ix.nisAt == len(f.Lines) {
			ix.nisAt = i
		}
		if l.Fields != nil {
			ix.byName[l.Fields[0]] = append(ix.byName[l.Fields[0]], l)
		}
	}
	f.ix = ix
	return ix
}

// ids returns the first entry of each id in field idx.
func (f *File) ids(idx int) map[int]*Line {
	ix := f.index()
	if m, ok := ix.byID[idx]; ok {
		return m
	}
	m := map[int]*Line{}
	for _, l := range f.Lines {
		if l.Fields != nil && idx < len(l.Fields) {
			if id := parseID(l.Fields[idx]); m[id] == nil {
				m[id] = l
			}
		}
	}
	ix.byID[idx] = m
	return m
}

// Named returns every entry named name, in file order.
func (f *File) Named(name string) []*Line { return f.index().byName[name] }

// Parse splits data into lines and recognizes entries. It never fails: what
// it does not understand it keeps.
func Parse(kind Kind, data []byte) *File {
	f := &File{Kind: kind}
	if len(data) == 0 {
		return f
	}
	s := string(data)
	if strings.HasSuffix(s, "\n") {
		s = s[:len(s)-1]
	} else {
		f.noFinalNewline = true
	}
	for _, t := range strings.Split(s, "\n") {
		f.Lines = append(f.Lines, parseLine(kind, t))
	}
	return f
}

func parseLine(kind Kind, t string) *Line {
	l := &Line{Text: t}
	// NIS compat lines ("+", "+@netgroup", "-bob") are never parsed by
	// commonio; they keep their place at the end of the file.
	if isNIS(t) {
		return l
	}
	fields := strings.Split(t, ":")
	if kind.valid != nil && kind.valid(fields) {
		l.Fields = fields
	}
	return l
}

func isNIS(t string) bool { return t != "" && (t[0] == '+' || t[0] == '-') }

// Pad extends an entry read in a short form (group without members, 5- or
// 8-field shadow) to the full field count before it is changed, as
// shadow-utils writes it back.
func (f *File) Pad(l *Line) {
	for len(l.Fields) < f.Kind.Fields {
		l.Fields = append(l.Fields, "")
	}
}

// Bytes serializes the file.
func (f *File) Bytes() []byte {
	f.syncMembers()
	var b strings.Builder
	for i, l := range f.Lines {
		b.WriteString(l.text())
		if i < len(f.Lines)-1 || !f.noFinalNewline {
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

// Lookup returns the first entry named name, or nil. Like getpwnam on a
// files database, the first match wins.
func (f *File) Lookup(name string) *Line {
	if ls := f.Named(name); len(ls) > 0 {
		return ls[0]
	}
	return nil
}

// LookupID returns the first entry whose numeric field idx equals id, or nil.
func (f *File) LookupID(idx, id int) *Line {
	if id < 0 {
		return nil // parseID's "not a number"
	}
	return f.ids(idx)[id]
}

// Entries returns the entries in file order.
func (f *File) Entries() []*Line {
	f.syncMembers()
	var out []*Line
	for _, l := range f.Lines {
		if l.Fields != nil {
			out = append(out, l)
		}
	}
	return out
}

// Append adds an entry the way commonio_append does: after the last
// regular line but before the first NIS line, so "+" stays last.
func (f *File) Append(fields []string) *Line {
	l := &Line{Fields: append([]string(nil), fields...)}
	// The index (built once, then kept by ix.add) knows where the NIS
	// lines begin: no scan of the whole file per entry added.
	ix := f.index()
	at := ix.nisAt
	f.Lines = append(f.Lines, nil)
	copy(f.Lines[at+1:], f.Lines[at:])
	f.Lines[at] = l
	ix.add(l)
	return l
}

// Clone returns a deep copy, so a plan can simulate changes.
func (f *File) Clone() *File {
	if f == nil {
		return nil
	}
	f.syncMembers()
	c := &File{Kind: f.Kind, noFinalNewline: f.noFinalNewline, Lines: make([]*Line, len(f.Lines))}
	for i, l := range f.Lines {
		n := &Line{Text: l.Text}
		if l.Fields != nil {
			n.Fields = append([]string(nil), l.Fields...)
		}
		c.Lines[i] = n
	}
	return c
}

// parseID parses a uid/gid field the way shadow-utils' get_uid does
// (strtoll base 10: leading white space and a sign allowed, the whole field
// consumed, the value a valid 32-bit id); -1 when it is not one.
func parseID(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if !isDigits(s) {
		return -1
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > 0xFFFFFFFF || (neg && n != 0) {
		return -1
	}
	return int(n)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isLong is a (possibly negative) decimal number, as shadow's getlong wants.
func isLong(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return isDigits(s) && len(s) <= 18
}

// Members splits a comma-separated member list ("" → none).
func Members(field string) []string {
	if field == "" {
		return nil
	}
	return strings.Split(field, ",")
}

// add records an entry appended after every other entry.
func (ix *index) add(l *Line) {
	ix.lines++
	ix.nisAt++ // l went in before the NIS lines, or at the end
	ix.byName[l.Fields[0]] = append(ix.byName[l.Fields[0]], l)
	for idx, m := range ix.byID {
		if idx < len(l.Fields) {
			if id := parseID(l.Fields[idx]); m[id] == nil {
				m[id] = l
			}
		}
	}
	for k, e := range ix.ends {
		if int64(len(l.Fields)) <= k.field {
			continue
		}
		id := int64(parseID(l.Fields[k.field]))
		if id <= e.lowest && id >= k.lo {
			e.lowest = id - 1
		}
		if id >= e.highest && id <= k.hi {
			e.highest = id + 1
		}
	}
}

// idEnds returns newID's lowest and highest for ids of field idx in
// [lo, hi], scanning the file once per range and run.
func (f *File) idEnds(idx int, lo, hi int64) (lowest, highest int64) {
	ix := f.index()
	k := idRangeKey{int64(idx), lo, hi}
	if e, ok := ix.ends[k]; ok {
		return e.lowest, e.highest
	}
	e := &idEnds{lowest: hi, highest: lo}
	for _, l := range f.Lines {
		if l.Fields == nil {
			continue
		}
		id := int64(l.Int(idx))
		if id <= e.lowest && id >= lo {
			e.lowest = id - 1
		}
		if id >= e.highest && id <= hi {
			e.highest = id + 1
		}
	}
	ix.ends[k] = e
	return e.lowest, e.highest
}
