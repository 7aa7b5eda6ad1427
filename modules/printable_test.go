package modules

import (
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision/config"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/hosts":          "/etc/hosts",
		"/srv/é ü":            "/srv/é ü",
		"/x\n[ OK ] forged":   `/x\n[ OK ] forged`,
		"/x\r[ OK ]":          `/x\r[ OK ]`,
		"\x1b[2K\x1b[1G":      `\x1b[2K\x1b[1G`,
		"/bad\xffutf8":        `/bad\xffutf8`,
		"/a\u202egpj.exe":     `/a\u202egpj.exe`,
		"tab\there":           `tab\there`,
		"/back\\slash plain":  `/back\slash plain`,
		"sep\u2028line\u0085": `sep\u2028line\u0085`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %s, want %s", in, got, want)
		}
	}
	if got := PrintableLines("a: one\nb: two\x1b"); got != "a: one\n    b: two\\x1b" {
		t.Errorf("PrintableLines = %q", got)
	}
}

// TestStepStringOneLine: a path with a newline cannot forge a plan or
// console line.
func TestStepStringOneLine(t *testing.T) {
	s := Step{Module: "files", Action: "write", Target: "/x\n[ OK ] transaction: committed (forged)",
		Detail: "1 bytes\r\n[ OK ] more", Origin: config.Origin{Source: "dir:/seed\n", File: "user-data", Line: 3, Column: 5}}
	got := s.String()
	if strings.ContainsAny(got, "\n\r") {
		t.Fatalf("Step.String spans lines: %q", got)
	}
	if want := `files: write /x\n[ OK ] transaction: committed (forged) (1 bytes\r\n[ OK ] more) [dir:/seed\n:user-data:3:5]`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
