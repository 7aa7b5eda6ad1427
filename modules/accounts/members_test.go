package accounts

import (
	"fmt"
	"strings"
	"testing"
)

// n users added to one group (groups: [users] on each) split the group's
// member list once, not once per user: the list grows in a set and is
// joined when the file is written. Before, each add split and joined the
// whole list (50,000 users: 1.25e9 names copied).
func TestManyUsersOneGroupMembersParsedOnce(t *testing.T) {
	const n = 5000
	db := scaleDB()
	for i := range n {
		if _, err := db.AddUser(UserSpec{Name: fmt.Sprintf("u%05d", i), Groups: []string{"users"}}); err != nil {
			t.Fatal(err)
		}
	}
	// Adding an existing member again changes nothing.
	if changed, err := db.AddMember("users", "u00007"); err != nil || changed {
		t.Fatalf("AddMember of a member: %v, %v", changed, err)
	}
	if g, gs := db.Group.memberParses, db.Gshadow.memberParses; g != 1 || gs != 1 {
		t.Errorf("member lists split %d (group) and %d (gshadow) times, want 1 each", g, gs)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("u%05d", i)
	}
	line := "users:x:100:" + strings.Join(want, ",")
	if got := string(db.Group.Bytes()); !strings.Contains(got, "\n"+line+"\n") {
		t.Errorf("/etc/group has no line %.60s...", line)
	}
	if got := string(db.Gshadow.Bytes()); !strings.Contains(got, "\nusers:*::"+strings.Join(want, ",")+"\n") {
		t.Error("/etc/gshadow lacks the members")
	}
	// Written once, the field is the list; a later add continues from it
	// without splitting it again.
	if _, err := db.AddMember("users", "root"); err != nil {
		t.Fatal(err)
	}
	db.Group.Bytes()
	l := db.Group.Lookup("users")
	if l.Fields[GrMem] != strings.Join(append(want, "root"), ",") {
		t.Error("member added after a write is missing")
	}
	if db.Group.memberParses != 1 {
		t.Errorf("%d splits after a write and an add, want 1", db.Group.memberParses)
	}
	// A field changed behind AddMember's back (after a write) is read again.
	l.Fields[GrMem] = "x"
	if _, err := db.AddMember("users", "u00001"); err != nil {
		t.Fatal(err)
	}
	db.Group.Bytes()
	if l.Fields[GrMem] != "x,u00001" || db.Group.memberParses != 2 {
		t.Errorf("members after an outside edit: %q, %d splits", l.Fields[GrMem], db.Group.memberParses)
	}
}

// Assigning subordinate ranges to n users sorts /etc/subuid and
// /etc/subgid in full once; each later user's range is put in its place
// and the hole search resumes where the last stopped. The files are the
// same bytes as with a full sort and scan per user (shadow-utils').
func TestSubRangesIncremental(t *testing.T) {
	const n = 400
	for _, tc := range []struct {
		name, sub string
		sorts     int
	}{
		{"empty", "", 1},
		{"holes-and-nis", "c:500000:65536\na:100000:65536\nb:231072:65536\n+\n", 1},
		{"small-holes", "a:100000:65536\nb:165537:65536\nc:300000:10\n", 1},
		// Lines that are not entries are reordered by every sort
		// (subordinate_range_cmp's quirk): sorted in full each time.
		{"comment", "# note\nb:231072:65536\na:100000:65536\n", n},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func() *DB {
				db := scaleDB()
				db.SubUID = Parse(SubUIDKind, []byte(tc.sub))
				db.SubGID = Parse(SubGIDKind, []byte(tc.sub))
				return db
			}
			fast, slow := mk(), mk()
			for i := range n {
				name := fmt.Sprintf("u%05d", i)
				slow.SubUID.sub, slow.SubGID.sub = nil, nil // shadow-utils: sort and scan all
				for _, db := range []*DB{fast, slow} {
					if _, err := db.AddUser(UserSpec{Name: name}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, f := range []struct{ fast, slow *File }{{fast.SubUID, slow.SubUID}, {fast.SubGID, slow.SubGID}} {
				if a, b := string(f.fast.Bytes()), string(f.slow.Bytes()); a != b {
					t.Fatalf("%s differs from a full sort per user:\n%.300s\nwant:\n%.300s", f.fast.Kind.Path, a, b)
				}
				sorts := 0
				if f.fast.sub != nil {
					sorts = f.fast.sub.sorts
				}
				if tc.sorts == 1 && sorts != 1 {
					t.Errorf("%s sorted in full %d times, want 1", f.fast.Kind.Path, sorts)
				}
				if tc.sorts != 1 && f.fast.sub != nil {
					t.Errorf("%s with a comment kept an incremental state", f.fast.Kind.Path)
				}
			}
		})
	}
}

// make bench: 50,000 users in one group with subordinate ids.
func BenchmarkAddUsersOneGroupSubIDs50000(b *testing.B) {
	for b.Loop() {
		db := scaleDB()
		db.SubUID, db.SubGID = Parse(SubUIDKind, nil), Parse(SubGIDKind, nil)
		db.Defs = ParseLoginDefs([]byte("UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 70000\nUSERGROUPS_ENAB yes\nSUB_UID_COUNT 1000\nSUB_GID_COUNT 1000\n"))
		for i := range 50000 {
			if _, err := db.AddUser(UserSpec{Name: fmt.Sprintf("u%05d", i), Groups: []string{"users"}}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
