package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestLogLinesCannotBeForged: a path with a newline (or a terminal escape)
// in a step prints on its line, escaped; a message that may rightly span
// lines (an error, a warning) has its later lines indented. No line of the
// log or of status starts with a forged mark, none holds a CR or an ESC.
func TestLogLinesCannotBeForged(t *testing.T) {
	const forged = "\n[ OK ] transaction: committed (forged)"
	r := New(clock())
	s := r.BeginStep("files", "write", "/x"+forged, "1 bytes"+forged, "dir:/seed"+forged+":user-data:3:5")
	r.SetOutput(s, []string{"out\r[ OK ] forged\x1b[2K"})
	r.EndStep(s, errors.New("files /x"+forged+": permission denied"), false)
	r.AddWarning("warn /x" + forged)
	r.Finish(ResultRolledBack, errors.New("files /x"+forged+": permission denied"), "")
	var status bytes.Buffer
	FormatStatus(&status, r, true)
	for name, text := range map[string]string{"log": string(r.Log()), "status": status.String()} {
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "[ OK ] transaction") || strings.ContainsAny(l, "\r\x1b") {
				t.Errorf("%s: forged line %q in\n%s", name, l, text)
			}
		}
		if !strings.Contains(text, `/x\n[ OK ] transaction: committed (forged)`) {
			t.Errorf("%s: the path is not shown escaped:\n%s", name, text)
		}
	}
}
