package e2e

import "testing"

func TestAVCOurs(t *testing.T) {
	inodes := map[string]map[uint64]string{
		".ssh":     {258: "/home/carol/.ssh"},
		"snapshot": {256: "/"},
	}
	for _, c := range []struct {
		line, want string
	}{
		{`avc:  denied  { relabelto } for  pid=465 comm="systemd-tmpfile" name=".ssh" dev="vda1" ino=258 scontext=x tcontext=y tclass=dir permissive=1`, "/home/carol/.ssh"},
		{`avc:  denied  { relabelto } for  pid=465 comm="systemd-tmpfile" name=".ssh" dev="vda1" ino=259 scontext=x tcontext=y tclass=dir permissive=1`, ""},
		{`avc:  denied  { search } for  pid=519 comm="agetty" name="snapshot" dev="vda1" ino=256 scontext=x tcontext=y tclass=dir permissive=1`, "/"},
		{`avc:  denied  { checkpoint_restore } for  pid=519 comm="agetty" capability=40  scontext=x tcontext=x tclass=capability2 permissive=1`, ""},
		{`avc:  denied  { open } for  pid=1 comm="x" path="/home/carol/.ssh" dev="vda1" ino=258 scontext=x`, "/home/carol/.ssh"},
	} {
		if got, _ := avcOurs(c.line, inodes); got != c.want {
			t.Errorf("avcOurs(%q) = %q, want %q", c.line, got, c.want)
		}
	}
}
