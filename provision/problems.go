package provision

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// originRe finds the origin a problem line starts with, after the
// "planning MODULE: " a plan error carries: "SOURCE:FILE:LINE:COL: ".
var originRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:planning [a-z ]+: )?(.+?):(\d+):(\d+): `) })

// problem is one line of an invalid configuration's report.
type problem struct {
	text      string
	doc       string
	line, col int
	located   bool
}

func problemLines(err error) []problem {
	var out []problem
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, parseProblem(l))
		}
	}
	return out
}

// parseProblem finds the origin line l starts with, if it has one.
func parseProblem(l string) problem {
	p := problem{text: l}
	if m := originRe().FindStringSubmatch(l); m != nil {
		p.doc, p.located = m[1], true
		p.line, _ = strconv.Atoi(m[2])
		p.col, _ = strconv.Atoi(m[3])
	}
	return p
}

func (p problem) origin() string { return fmt.Sprintf("%s:%d:%d", p.doc, p.line, p.col) }

// invalidConfig is the error of a configuration with problems: those of
// parsing and validation, and those planning found (planErr, may be nil),
// one per line, sorted by document, line and column. A plan error at an
// origin already reported is left out: planning an item that failed to
// validate only says the same again.
func invalidConfig(problems []error, planErr error) error {
	var lines []problem
	seen := map[string]bool{}
	for _, e := range problems {
		for _, p := range problemLines(e) {
			if p.located {
				seen[p.origin()] = true
			}
			lines = append(lines, p)
		}
	}
	if planErr != nil {
		for _, p := range problemLines(planErr) {
			if p.located && seen[p.origin()] {
				continue
			}
			lines = append(lines, p)
		}
	}
	sort.SliceStable(lines, func(i, j int) bool {
		a, b := lines[i], lines[j]
		switch {
		case a.located != b.located:
			return a.located // lines without an origin last
		case !a.located:
			return false
		case a.doc != b.doc:
			return a.doc < b.doc
		case a.line != b.line:
			return a.line < b.line
		}
		return a.col < b.col
	})
	texts := make([]string, 0, len(lines))
	dup := map[string]bool{}
	for _, p := range lines {
		if !dup[p.text] {
			dup[p.text] = true
			texts = append(texts, p.text)
		}
	}
	return &invalidError{lines: texts}
}

// invalidError wraps ErrInvalid around the sorted problem lines.
type invalidError struct{ lines []string }

func (e *invalidError) Error() string {
	return ErrInvalid.Error() + ": " + strings.Join(e.lines, "\n")
}

func (e *invalidError) Unwrap() error { return ErrInvalid }

// LineOrigin returns the origin ("source:file:line:col") a problem line
// starts with, or "".
func LineOrigin(line string) string {
	if p := parseProblem(line); p.located {
		return p.origin()
	}
	return ""
}

// Problems returns the lines of an invalid configuration's error, each
// with its origin first, or nil for another error.
func Problems(err error) []string {
	var ie *invalidError
	if errors.As(err, &ie) {
		return ie.lines
	}
	return nil
}
