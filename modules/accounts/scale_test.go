package accounts

import (
	"fmt"
	"testing"
)

// scaleDB is a small Debian-like database for adding many users to.
func scaleDB() *DB {
	return &DB{
		Passwd:  Parse(PasswdKind, []byte("root:x:0:0:root:/root:/bin/bash\n")),
		Group:   Parse(GroupKind, []byte("root:x:0:\nusers:x:100:\n")),
		Shadow:  Parse(ShadowKind, []byte("root:*:19000:0:99999:7:::\n")),
		Gshadow: Parse(GshadowKind, []byte("root:*::\nusers:*::\n")),
		Defs:    ParseLoginDefs([]byte("UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nUSERGROUPS_ENAB yes\n")),
	}
}

func addUsers(tb testing.TB, n int) *DB {
	db := scaleDB()
	for i := range n {
		if _, err := db.AddUser(UserSpec{Name: fmt.Sprintf("u%05d", i)}); err != nil {
			tb.Fatal(err)
		}
	}
	return db
}

// Adding n users is linear: lookups by name and id and the next free id
// come from the file's index, built once (20,000 users took minutes when
// each lookup and each new id scanned the files). The index checks are
// the test; the time is measured by BenchmarkAddUsers20000 (make bench),
// never asserted here.
func TestAddManyUsersIndexedOnce(t *testing.T) {
	const n = 5000
	db := addUsers(t, n)
	if db.Passwd.ix == nil || db.Passwd.ix.lines != len(db.Passwd.Lines) || db.Group.ix.lines != len(db.Group.Lines) {
		t.Fatal("the index was not kept up to date by Append: lookups rebuild it")
	}
	last := fmt.Sprintf("u%05d", n-1)
	if l := db.Passwd.Lookup(last); l == nil || l.Int(PwUID) != 1000+n-1 {
		t.Errorf("last user: %v", l)
	}
	if l := db.Group.LookupID(GrGID, 1000+n-1); l == nil || l.Name() != last {
		t.Errorf("last group: %v", l)
	}
}

func BenchmarkAddUsers20000(b *testing.B) {
	for b.Loop() {
		addUsers(b, 20000)
	}
}
