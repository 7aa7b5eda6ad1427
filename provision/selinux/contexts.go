package selinux

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
	"sync"
)

// The rules below reproduce libselinux's file backend (label_file.c,
// label_file.h, label_support.c of libselinux 3.4, the version the Debian
// reference tools use; 3.8 rebuilt the data structure and, after
// regressions, restored this precedence: upstream 08e0a348, 98110193):
//
//   - file_contexts, then file_contexts.homedirs, then file_contexts.local
//     are read in that order into one list;
//   - the list is partitioned, keeping order, into specifications whose
//     regex has a metacharacter and those without ("exact"), the exact ones
//     placed after the others;
//   - a lookup walks the list from the end, so the last matching entry wins
//     and any exact entry beats any regex;
//   - an entry is only tried when its stem (the text before the second '/'
//     when that text has no metacharacter) equals the path's stem, or it has
//     none; and when its file type is unset or equals the path's;
//   - the regex is anchored as "^" + regex + "$" (no group: a top-level '|'
//     anchors only its outer alternatives), PCRE with DOTALL;
//   - the first entry found decides; "<<none>>" means "do not label".

// kind is a file type as the S_IFMT bits of st_mode; 0 means any.
type kind uint32

const (
	kindAny  kind = 0
	kindFIFO kind = 0o010000
	kindChr  kind = 0o020000
	kindDir  kind = 0o040000
	kindBlk  kind = 0o060000
	kindReg  kind = 0o100000
	kindLnk  kind = 0o120000
	kindSock kind = 0o140000
)

func kindOf(m fs.FileMode) kind {
	switch {
	case m&fs.ModeIrregular != 0:
		return kindAny
	case m&fs.ModeDir != 0:
		return kindDir
	case m&fs.ModeSymlink != 0:
		return kindLnk
	case m&fs.ModeNamedPipe != 0:
		return kindFIFO
	case m&fs.ModeSocket != 0:
		return kindSock
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return kindChr
	case m&fs.ModeDevice != 0:
		return kindBlk
	default:
		return kindReg
	}
}

// kindFlag maps the optional second column of a file_contexts line.
var kindFlag = map[string]kind{
	"--": kindReg, "-d": kindDir, "-l": kindLnk, "-b": kindBlk,
	"-c": kindChr, "-s": kindSock, "-p": kindFIFO,
}

// metaChars are the characters libselinux treats as making a
// specification a regex rather than a path (spec_hasMetaChars,
// get_stem_from_spec).
const metaChars = ".^$?*+|[({"

type spec struct {
	regex   string
	kind    kind
	context string // "<<none>>" kept verbatim
	origin  string // file:line, for errors and debugging
	stem    int    // index into database.stems, -1 for none
	exact   bool   // no unescaped metacharacter

	// literal is set when the regex can only ever match this one string,
	// so a string comparison replaces the regex.
	literal   string
	isLiteral bool
	// prefix is a string every match must start with (a cheap filter
	// before running the regex).
	prefix string

	once sync.Once
	re   *regexp.Regexp
}

type database struct {
	// The entries of each file in file order; generated holds home
	// directory entries made from the template (see homedirs.go), which
	// rank with file_contexts.homedirs.
	base, homedirs, generated, local []*spec

	specs []*spec // sorted: regex specs, then exact specs

	stems     []string
	stemIndex map[string]int

	// Indices into specs, ascending, per stem id; noStem holds the
	// indices of specs without a stem, which every lookup tries.
	regexByStem [][]int
	regexNoStem []int
	exactByLit  map[string][]int // literal exact specs by their path
	exactOther  []int            // exact specs that still need the regex

	subs, distSubs []substitution
}

// loadDatabase reads the base file and its companions (.homedirs, .local,
// .subs_dist, .subs); only the base file must exist.
func loadDatabase(base string) (*database, error) {
	db := &database{stemIndex: map[string]int{}}
	for _, suffix := range []string{"", ".homedirs", ".local"} {
		name := base + suffix
		data, err := os.ReadFile(name)
		if err != nil {
			if suffix != "" && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("file contexts: %w", err)
		}
		specs, err := db.parse(name, data)
		if err != nil {
			return nil, err
		}
		switch suffix {
		case "":
			db.base = specs
		case ".homedirs":
			db.homedirs = specs
		case ".local":
			db.local = specs
		}
	}
	var err error
	if db.distSubs, err = readSubs(base + ".subs_dist"); err != nil {
		return nil, err
	}
	if db.subs, err = readSubs(base + ".subs"); err != nil {
		return nil, err
	}
	db.index()
	return db, nil
}

// parse reads file_contexts lines: "regex [type] context". As libselinux
// does, only a line whose first non-blank is '#' is a comment, fields past
// the third are ignored, and non-ASCII bytes are an error.
func (db *database) parse(name string, data []byte) ([]*spec, error) {
	var specs []*spec
	lineno := 0
	for len(data) > 0 {
		lineno++
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		fields := fieldsC(line)
		if len(fields) == 0 || fields[0][0] == '#' {
			continue
		}
		origin := fmt.Sprintf("%s:%d", name, lineno)
		for _, f := range fields {
			for i := 0; i < len(f); i++ {
				if f[i] >= 0x80 {
					return nil, fmt.Errorf("%s: non-ASCII character in %q", origin, f)
				}
			}
		}
		s := &spec{regex: fields[0], origin: origin}
		switch len(fields) {
		case 1:
			return nil, fmt.Errorf("%s: missing context for %q", origin, fields[0])
		case 2:
			s.context = fields[1]
		default:
			k, ok := kindFlag[fields[1]]
			if !ok {
				return nil, fmt.Errorf("%s: invalid file type %q (want --, -d, -l, -b, -c, -s or -p)", origin, fields[1])
			}
			s.kind, s.context = k, fields[2]
		}
		if err := db.classify(s); err != nil {
			return nil, fmt.Errorf("%s: %w", origin, err)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// fieldsC splits at most three fields at C isspace() characters.
func fieldsC(line []byte) []string {
	var out []string
	i := 0
	for len(out) < 3 {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		out = append(out, string(line[i:j]))
		i = j
	}
	return out
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func (db *database) classify(s *spec) error {
	s.exact = !hasMetaChar(s.regex)
	s.stem = -1
	if n := specStemLen(s.regex); n > 0 {
		st := s.regex[:n]
		id, ok := db.stemIndex[st]
		if !ok {
			id = len(db.stems)
			db.stems = append(db.stems, st)
			db.stemIndex[st] = id
		}
		s.stem = id
	}
	if s.exact {
		s.literal, s.isLiteral = unescapeLiteral(s.regex)
		if s.isLiteral {
			return nil
		}
	}
	// Check the syntax now so a bad line is reported with its origin at
	// load time; compiling waits until a lookup needs the regex, because
	// a lookup touches only a few of the thousands of entries.
	if _, err := syntax.Parse(anchor(s.regex), syntax.Perl); err != nil {
		return fmt.Errorf("regex %q is not supported: %w", s.regex, err)
	}
	s.prefix = literalPrefix(s.regex)
	return nil
}

// anchor builds the expression libselinux compiles: "^" + regex + "$",
// with '.' matching newlines (PCRE2_DOTALL) and '$' also matching before a
// final newline as PCRE's does.
func anchor(re string) string {
	return `(?s)^` + re + `(?-s:\n?)$`
}

func hasMetaChar(re string) bool {
	for i := 0; i < len(re); i++ {
		if re[i] == '\\' {
			i++
			continue
		}
		if strings.IndexByte(metaChars, re[i]) >= 0 {
			return true
		}
	}
	return false
}

// specStemLen is the length of the stem of a specification: the text up to
// the second '/', provided it contains no metacharacter (an escaped one
// counts too, as in libselinux).
func specStemLen(re string) int {
	if len(re) < 2 {
		return 0
	}
	n := strings.IndexByte(re[1:], '/')
	if n < 0 {
		return 0
	}
	n++
	if strings.ContainsAny(re[:n], metaChars) {
		return 0
	}
	return n
}

// pathStemLen is the length of the stem of a path (libselinux
// get_stem_from_file_name): up to the second '/'.
func pathStemLen(p string) int {
	if len(p) < 2 {
		return 0
	}
	n := strings.IndexByte(p[1:], '/')
	if n < 0 {
		return 0
	}
	return n + 1
}

// unescapeLiteral turns a metacharacter-free regex into the only string it
// matches. Escapes of punctuation are literal in PCRE; an escaped letter or
// digit (\d, \w, \1 ...) is not, and a lone ')' is a PCRE error, so those
// keep the regex.
func unescapeLiteral(re string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\':
			if i+1 >= len(re) {
				return "", false
			}
			n := re[i+1]
			if isAlnum(n) || n < 0x21 || n > 0x7e {
				return "", false
			}
			b.WriteByte(n)
			i++
		case c == ')':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// literalPrefix returns a string every path matched by the anchored regex
// starts with; "" when that cannot be told cheaply (a top-level '|', \Q).
func literalPrefix(re string) string {
	if strings.Contains(re, `\Q`) || topLevelAlternation(re) {
		return ""
	}
	var b strings.Builder
	last := 0 // length of b before the last literal character
	for i := 0; i < len(re); i++ {
		c := re[i]
		if strings.IndexByte(metaChars, c) >= 0 || c == ')' {
			if c == '?' || c == '*' || c == '{' {
				// The quantifier makes the previous character optional.
				s := b.String()[:last]
				return s
			}
			return b.String()
		}
		if c == '\\' {
			if i+1 >= len(re) || isAlnum(re[i+1]) {
				return b.String()
			}
			i++
			c = re[i]
		}
		last = b.Len()
		b.WriteByte(c)
	}
	return b.String()
}

// topLevelAlternation reports whether re has a '|' outside any group or
// bracket expression.
func topLevelAlternation(re string) bool {
	depth := 0
	for i := 0; i < len(re); i++ {
		switch re[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case '|':
			if depth == 0 {
				return true
			}
		case '[':
			i = skipClass(re, i)
		}
	}
	return false
}

// skipClass returns the index of the ']' closing the bracket expression
// that opens at re[i] (or the last index when it is unterminated).
func skipClass(re string, i int) int {
	j := i + 1
	if j < len(re) && re[j] == '^' {
		j++
	}
	if j < len(re) && re[j] == ']' {
		j++ // a leading ']' is a member
	}
	for ; j < len(re); j++ {
		switch re[j] {
		case '\\':
			j++
		case '[':
			if j+1 < len(re) && (re[j+1] == ':' || re[j+1] == '.' || re[j+1] == '=') {
				if k := strings.Index(re[j+2:], string(re[j+1])+"]"); k >= 0 {
					j += 2 + k + 1
				}
			}
		case ']':
			return j
		}
	}
	return len(re) - 1
}

// index sorts the specifications as libselinux's sort_specs does and
// builds the per-stem lookup tables.
func (db *database) index() {
	var all []*spec
	for _, l := range [][]*spec{db.base, db.homedirs, db.generated, db.local} {
		all = append(all, l...)
	}
	db.specs = make([]*spec, 0, len(all))
	for _, s := range all {
		if !s.exact {
			db.specs = append(db.specs, s)
		}
	}
	for _, s := range all {
		if s.exact {
			db.specs = append(db.specs, s)
		}
	}
	db.regexByStem = make([][]int, len(db.stems))
	db.exactByLit = map[string][]int{}
	for i, s := range db.specs {
		switch {
		case s.exact && s.isLiteral:
			db.exactByLit[s.literal] = append(db.exactByLit[s.literal], i)
		case s.exact:
			db.exactOther = append(db.exactOther, i)
		case s.stem < 0:
			db.regexNoStem = append(db.regexNoStem, i)
		default:
			db.regexByStem[s.stem] = append(db.regexByStem[s.stem], i)
		}
	}
}

func (s *spec) match(key string) bool {
	if s.isLiteral {
		// PCRE's '$' also matches before a final newline.
		return key == s.literal || key == s.literal+"\n"
	}
	if !strings.HasPrefix(key, s.prefix) {
		return false
	}
	s.once.Do(func() {
		// classify parsed this expression already, so this does not
		// fail; if it ever did, the entry would simply never match.
		s.re, _ = regexp.Compile(anchor(s.regex))
	})
	return s.re != nil && s.re.MatchString(key)
}

// normalizeKey removes duplicate slashes and one trailing slash, as
// libselinux does before a lookup.
func normalizeKey(p string) string {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// byteKey makes Go's UTF-8 regexp engine see one character per byte, as
// PCRE without UTF mode does: every byte >= 0x80 becomes a lone
// continuation byte, which the engine reads as one invalid rune. Patterns
// are ASCII-only, so no pattern can tell those bytes apart.
func byteKey(p string) string {
	for i := 0; i < len(p); i++ {
		if p[i] >= 0x80 {
			b := []byte(p)
			for j := i; j < len(b); j++ {
				if b[j] >= 0x80 {
					b[j] = 0x80
				}
			}
			return string(b)
		}
	}
	return p
}

func (db *database) lookup(path string, k kind) (string, bool) {
	key := normalizeKey(path)
	if key == "" {
		return "", false
	}
	key = db.substitute(key)
	fileStem := -1
	if n := pathStemLen(key); n > 0 {
		if id, ok := db.stemIndex[key[:n]]; ok {
			fileStem = id
		}
	}
	rkey := byteKey(key)
	try := func(i int) (string, bool, bool) {
		s := db.specs[i]
		if s.stem >= 0 && s.stem != fileStem {
			return "", false, false
		}
		if k != kindAny && s.kind != kindAny && s.kind != k {
			return "", false, false
		}
		m := false
		if s.isLiteral {
			m = s.match(key)
		} else {
			m = s.match(rkey)
		}
		if !m {
			return "", false, false
		}
		if s.context == "<<none>>" {
			return "", false, true
		}
		return s.context, true, true
	}
	// Exact specifications come last in the sorted list, so they are
	// tried first, highest index first.
	lits := db.exactByLit[key]
	if strings.HasSuffix(key, "\n") {
		if more := db.exactByLit[strings.TrimSuffix(key, "\n")]; len(more) > 0 {
			lits = append(append([]int(nil), lits...), more...)
			sort.Ints(lits)
		}
	}
	if c, ok, done := walkDesc(lits, db.exactOther, try); done {
		return c, ok
	}
	var byStem []int
	if fileStem >= 0 {
		byStem = db.regexByStem[fileStem]
	}
	if c, ok, done := walkDesc(byStem, db.regexNoStem, try); done {
		return c, ok
	}
	return "", false
}

// walkDesc visits the union of two ascending index lists from the highest
// index down until try reports a decision.
func walkDesc(a, b []int, try func(int) (string, bool, bool)) (string, bool, bool) {
	i, j := len(a)-1, len(b)-1
	for i >= 0 || j >= 0 {
		var n int
		if j < 0 || (i >= 0 && a[i] > b[j]) {
			n = a[i]
			i--
		} else {
			n = b[j]
			j--
		}
		if c, ok, done := try(n); done {
			return c, ok, true
		}
	}
	return "", false, false
}
