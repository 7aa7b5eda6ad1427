package accounts

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// ErrNoFreeID is returned when a range has no unused id left.
var ErrNoFreeID = errors.New("no free id in range")

// idRange is get_ranges() of shadow-utils' find_new_uid/find_new_gid:
// regular ids come from [UID_MIN, UID_MAX]; system ids from
// [SYS_UID_MIN, SYS_UID_MAX] with SYS_UID_MAX defaulting to UID_MIN-1;
// a requested ("preferred") id may go down to 1 for system accounts.
func (db *DB) idRange(prefix string, system bool) (lo, hi, preferredMin int64, err error) {
	d := db.Defs
	if d == nil {
		d = ParseLoginDefs(nil)
	}
	if system {
		lo = d.Num("SYS_"+prefix+"_MIN", 101)
		hi = d.Num("SYS_"+prefix+"_MAX", d.Num(prefix+"_MIN", 1000)-1)
		if hi < lo {
			return 0, 0, 0, fmt.Errorf("invalid login.defs: SYS_%s_MIN %d > SYS_%s_MAX %d", prefix, lo, prefix, hi)
		}
		if lo == 0 {
			lo = 1 // 0 is root's
		}
		return lo, hi, 1, nil
	}
	lo = d.Num(prefix+"_MIN", 1000)
	hi = d.Num(prefix+"_MAX", 60000)
	if hi < lo {
		return 0, 0, 0, fmt.Errorf("invalid login.defs: %s_MIN %d > %s_MAX %d", prefix, lo, prefix, hi)
	}
	return lo, hi, lo, nil
}

// newID is find_new_uid/find_new_gid. A preferred id is taken when it is
// in [preferredMin, max] and unused. Otherwise regular ids continue above the
// highest one in use in the range (wrapping to the lowest free id when the
// top is taken), and system ids go down from just below the lowest one in
// use (wrapping to the highest free id).
func (db *DB) newID(kind string, system bool, preferred *int64) (int64, error) {
	lo, hi, pmin, err := db.idRange(kind, system)
	if err != nil {
		return -1, err
	}
	var f *File
	idx := PwUID
	if kind == "UID" {
		f = db.Passwd
	} else {
		f, idx = db.Group, GrGID
	}
	// The file's index answers both in constant time per new id: a run
	// adding n accounts must not scan the file n times.
	used := f.ids(idx)
	inUse := func(id int64) bool { return id >= 0 && id <= math.MaxInt32 && used[int(id)] != nil }
	if preferred != nil && *preferred >= pmin && *preferred <= hi && !inUse(*preferred) {
		return *preferred, nil
	}
	lowest, highest := f.idEnds(idx, lo, hi)
	if system {
		if lowest < lo {
			lowest = hi
		}
		for id := lowest; id >= lo; id-- {
			if !inUse(id) {
				return id, nil
			}
		}
		if lowest != hi {
			for id := hi; id >= lo; id-- {
				if !inUse(id) {
					return id, nil
				}
			}
		}
	} else {
		if highest > hi {
			highest = lo
		}
		for id := highest; id <= hi; id++ {
			if !inUse(id) {
				return id, nil
			}
		}
		if highest != lo {
			for id := lo; id <= hi; id++ {
				if !inUse(id) {
					return id, nil
				}
			}
		}
	}
	return -1, fmt.Errorf("%s range [%d, %d]: %w", kind, lo, hi, ErrNoFreeID)
}

// NewUID picks the uid useradd would for a new (system) user.
func (db *DB) NewUID(system bool) (int, error) {
	id, err := db.newID("UID", system, nil)
	return int(id), err
}

// NewGID picks the gid groupadd/useradd would; preferred (the new user's
// uid, for a user-private group) is used when free and in range.
func (db *DB) NewGID(system bool, preferred *int) (int, error) {
	var p *int64
	if preferred != nil {
		v := int64(*preferred)
		p = &v
	}
	id, err := db.newID("GID", system, p)
	return int(id), err
}

// subRange is a parsed subuid/subgid line.
type subRange struct {
	line         *Line
	start, count uint64
}

// newSubRange is find_new_sub_uids/find_new_sub_gids: the lowest hole of
// count ids in [SUB_x_MIN, SUB_x_MAX] between the ranges already assigned.
// Like shadow-utils (commonio_sort in find_free_range), the file is sorted
// by start, count and owner as a side effect, other lines moved after the
// entries and NIS lines kept last.
func (db *DB) newSubRange(f *File, prefix string) (start, count uint64, err error) {
	d := db.Defs
	lo := uint64(d.Num("SUB_"+prefix+"_MIN", 100000))
	hi := uint64(d.Num("SUB_"+prefix+"_MAX", 600100000))
	count = uint64(d.Num("SUB_"+prefix+"_COUNT", 65536))
	if lo > hi || count >= hi || lo+count-1 > hi {
		return 0, 0, fmt.Errorf("invalid login.defs: SUB_%s_MIN %d, SUB_%s_MAX %d, SUB_%s_COUNT %d", prefix, lo, prefix, hi, prefix, count)
	}
	ranges, st := sortedSub(f)
	db.mark(f)
	// Resume the scan where the last one found its hole: the ranges before
	// it are unchanged (a new range goes into that hole or after it), so
	// their gaps are still too small and low is what the scan had there.
	key := subScanKey{lo, hi, count}
	i, low := 0, lo
	if st != nil && st.scan == key && st.scanAt <= len(ranges) {
		i, low = st.scanAt, st.scanLow
	}
	save := func(at int, l uint64) {
		if st != nil {
			st.scan, st.scanAt, st.scanLow = key, at, l
		}
	}
	for ; i < len(ranges); i++ {
		r := ranges[i]
		first, last := r.start, r.start+r.count-1
		high := first
		if high > hi+1 {
			high = hi + 1
		}
		if high > low && high-low >= count {
			save(i, low)
			return low, count, nil
		}
		if low < last+1 {
			low = last + 1
		}
		if low > hi {
			return 0, 0, fmt.Errorf("/etc/sub%sid: %w", lowerID(prefix), ErrNoFreeID)
		}
	}
	if hi-low+1 >= count {
		save(len(ranges), low)
		return low, count, nil
	}
	return 0, 0, fmt.Errorf("/etc/sub%sid: %w", lowerID(prefix), ErrNoFreeID)
}

// subSorted is a subuid/subgid file as newSubRange last left it: sorted,
// its lines ranges[i].line in order followed by the NIS lines, and where
// its last scan for a hole stopped.
type subSorted struct {
	lines   int
	ranges  []subRange
	scan    subScanKey
	scanAt  int
	scanLow uint64
	// sorts counts full sorts, for the tests.
	sorts int
}

type subScanKey struct{ lo, hi, count uint64 }

// sortedSub sorts f as sortSubFile does, incrementally: when the only
// change since the last sort is one entry appended (the range the last
// useradd got), that entry is moved to where the stable merge sort would
// put it, instead of sorting every entry again for every user. A file
// with lines that are not entries (whose order the sort's quirk changes on
// every sort) or otherwise changed is sorted in full. The state is nil for
// such a file.
func sortedSub(f *File) ([]subRange, *subSorted) {
	st := f.sub
	if st != nil && !st.valid(f) {
		st = nil
	}
	if st != nil && len(f.Lines) == st.lines {
		return st.ranges, st
	}
	if st != nil && len(f.Lines) == st.lines+1 && f.Lines[len(st.ranges)].Fields != nil {
		head := len(st.ranges)
		l := f.Lines[head]
		r := subRange{l, subNum(l.Fields[SubStart]), subNum(l.Fields[SubCount])}
		// After every entry that is not greater (the merge sort is stable).
		p := sort.Search(head, func(i int) bool { return subCmp(st.ranges[i].line, l) > 0 })
		copy(f.Lines[p+1:head+1], f.Lines[p:head])
		f.Lines[p] = l
		st.ranges = append(st.ranges, subRange{})
		copy(st.ranges[p+1:], st.ranges[p:head])
		st.ranges[p] = r
		st.lines++
		if p < st.scanAt {
			st.scan = subScanKey{} // the scanned prefix changed
		}
		// The line moved among the entries: the index's file order of
		// its name (and first entries of ids) may be off.
		if ix := f.ix; ix != nil && (len(ix.byName[l.Name()]) > 1 || len(ix.byID) > 0 || len(ix.ends) > 0) {
			f.ix = nil
		}
		return st.ranges, st
	}
	sorts := 0
	if f.sub != nil {
		sorts = f.sub.sorts
	}
	ranges := sortSubFile(f)
	f.sub = nil
	if len(ranges) == len(f.Lines)-nisCount(f.Lines) {
		f.sub = &subSorted{lines: len(f.Lines), ranges: ranges, sorts: sorts + 1}
	}
	return ranges, f.sub
}

// valid reports whether f's lines are still in the order st recorded
// (nothing but an append may have happened since).
func (st *subSorted) valid(f *File) bool {
	n := len(st.ranges)
	if len(f.Lines) < st.lines || len(f.Lines) > st.lines+1 {
		return false
	}
	return n == 0 || (f.Lines[0] == st.ranges[0].line && f.Lines[n-1] == st.ranges[n-1].line)
}

func nisCount(lines []*Line) int {
	for i, l := range lines {
		if l.Fields == nil && isNIS(l.Text) {
			return len(lines) - i
		}
	}
	return 0
}

func lowerID(prefix string) string {
	if prefix == "UID" {
		return "u"
	}
	return "g"
}

// sortSubFile reorders f like commonio_sort with subordinate_range_cmp and
// returns its entries in the new order.
func sortSubFile(f *File) []subRange {
	head := f.Lines
	var nis []*Line
	for i, l := range f.Lines {
		if l.Fields == nil && isNIS(l.Text) {
			head, nis = f.Lines[:i], f.Lines[i:]
			break
		}
	}
	if len(head) <= 1 {
		return subRanges(head)
	}
	sorted := append([]*Line(nil), head...)
	glibcMsort(sorted, subCmp)
	f.Lines = append(sorted, nis...)
	f.ix = nil // the first entry of a name or id may have changed
	return subRanges(sorted)
}

// subCmp is subordinate_range_cmp, including its quirk that two non-entry
// lines compare as "first is greater", which glibc's merge sort turns into
// a reordering of those lines that we reproduce.
func subCmp(a, b *Line) int {
	if a.Fields == nil {
		return 1
	}
	if b.Fields == nil {
		return -1
	}
	as, ac := subNum(a.Fields[SubStart]), subNum(a.Fields[SubCount])
	bs, bc := subNum(b.Fields[SubStart]), subNum(b.Fields[SubCount])
	switch {
	case as != bs:
		return cmp.Compare(as, bs)
	case ac != bc:
		return cmp.Compare(ac, bc)
	}
	return strings.Compare(a.Fields[SubOwner], b.Fields[SubOwner])
}

// glibcMsort is glibc's qsort for small arrays (msort_with_tmp): a top-down
// merge sort that splits n into n/2 and n-n/2 and takes from the left run
// while cmp <= 0. Reproducing it keeps our output identical to useradd's.
func glibcMsort(b []*Line, cmp func(a, b *Line) int) {
	n := len(b)
	if n <= 1 {
		return
	}
	n1 := n / 2
	b1, b2 := b[:n1], b[n1:]
	glibcMsort(b1, cmp)
	glibcMsort(b2, cmp)
	tmp := make([]*Line, 0, n)
	i, j := 0, 0
	for i < len(b1) && j < len(b2) {
		if cmp(b1[i], b2[j]) <= 0 {
			tmp = append(tmp, b1[i])
			i++
		} else {
			tmp = append(tmp, b2[j])
			j++
		}
	}
	tmp = append(tmp, b1[i:]...)
	tmp = append(tmp, b2[j:]...)
	copy(b, tmp)
}

func subRanges(lines []*Line) []subRange {
	var out []subRange
	for _, l := range lines {
		if l.Fields != nil {
			out = append(out, subRange{l, subNum(l.Fields[SubStart]), subNum(l.Fields[SubCount])})
		}
	}
	return out
}

func subNum(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}
