package report

import (
	"fmt"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	var tl Tail
	if tl.Lines() != nil {
		t.Fatal("empty tail has lines")
	}
	total := OutputHeadLines + OutputTailLines + 5
	for i := 0; i < total; i++ {
		fmt.Fprintf(&tl, "line %d\r\n", i)
	}
	tl.Write([]byte("partial "))
	tl.Write([]byte(strings.Repeat("é", OutputLineSize)))
	got := tl.Lines()
	if len(got) != OutputHeadLines+OutputTailLines+1 {
		t.Fatalf("%d lines: %q", len(got), got)
	}
	if got[0] != "line 0" || got[OutputHeadLines-1] != fmt.Sprintf("line %d", OutputHeadLines-1) {
		t.Errorf("head %q", got[:OutputHeadLines])
	}
	if got[OutputHeadLines] != "(6 lines not kept)" || got[OutputHeadLines+1] != fmt.Sprintf("line %d", OutputHeadLines+6) {
		t.Errorf("gap %q", got[OutputHeadLines:OutputHeadLines+2])
	}
	last := got[len(got)-1]
	if len(last) > OutputLineSize || !strings.HasPrefix(last, "partial é") {
		t.Errorf("last line %d bytes: %q", len(last), last[:20])
	}
}

func TestTailShort(t *testing.T) {
	var tl Tail
	tl.Write([]byte("one\ntwo"))
	if got := tl.Lines(); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("%q", got)
	}
}

func TestStepOutputRedacted(t *testing.T) {
	r := New(clock())
	r.AddSecret("s3cret")
	s := r.BeginStep("scripts", "run", "runcmd", "", "x:1:1")
	r.SetOutput(s, []string{"password is s3cret"})
	r.EndStep(s, fmt.Errorf("exit 3"), false)
	c := r.redacted()
	if got := c.Modules[0].Steps[0].Output[0]; strings.Contains(got, "s3cret") {
		t.Errorf("secret kept in output: %q", got)
	}
}
