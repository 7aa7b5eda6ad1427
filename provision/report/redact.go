package report

import (
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Masked replaces a secret.
const Masked = "[REDACTED]"

// redaction replaces what re matches with repl. A text holding none of
// hints (lower case; any of them) cannot match, and is not searched: most
// of a report is paths and plan lines, and the patterns are slow to fail.
// assigned, when set, is a closer test: a hint must also be followed, as
// in the pattern, by ":" or "=".
type redaction struct {
	re       func() *regexp.Regexp
	repl     string
	hints    []string
	assigned bool
}

// lazy compiles expr the first time a text holds one of its hints: start-up
// and most reports never compile most of them.
func lazy(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

var redactions = []redaction{
	// PEM private keys (also a truncated one running to the end).
	{lazy(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)`), "[REDACTED PRIVATE KEY]", []string{"private key-----"}, false},
	// crypt(3) hashes: $1$ $2a$ $2b$ $2y$ $5$ $6$ $7$ $y$ $gy$ $sha1$ $md5$ ...
	{lazy(`\$(1|2[abxy]?|5|6|7|y|gy|sha1|md5|argon2(?:id|i|d)?|scrypt|pbkdf2(?:-sha\d+)?)\$[A-Za-z0-9./$,=+-]{2,}`), "$$${1}$$" + Masked, []string{"$"}, false},
	// HTTP credentials and the IMDSv2 token.
	{lazy(`(?i)((?:authorization|proxy-authorization)\s*:\s*(?:bearer|basic|token|digest)?\s*)[^\s"',]+`), "${1}" + Masked, []string{"authorization"}, false},
	{lazy(`(?i)(x-aws-ec2-metadata-token\s*:\s*)[^\s"',]+`), "${1}" + Masked, []string{"x-aws-ec2-metadata-token"}, false},
	// user:password@ in URLs.
	{lazy(`(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@`), "${1}" + Masked + "@", []string{"://"}, false},
	// key = value / key: value / "key": "value" for secret-looking keys. An
	// already masked value is matched whole, so redacting twice changes nothing.
	// The key starts the text or follows a blank, a quote or a JSON/YAML
	// delimiter: "/etc/passwd: write ...: no space left on device" names a
	// file, and its error must stay readable.
	{lazy(`(?i)((?:^|[\s{,(\[])(?:"|')?(?:password|passwd|hashed_passwd|plain_text_passwd|passwordhash|password_hash|secret|client_secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key)\b(?:"|')?\s*[:=]\s*(?:"|')?)(\[REDACTED\]|[^\s"',;}\]]+)`), "${1}" + Masked, []string{"pass", "secret", "token", "key"}, true},
}

// Redact masks what looks like a secret in s: crypt hashes, PEM private
// keys, Authorization and IMDS token headers, URL passwords, and the values
// of password/secret/token keys. It cannot know a plain password that
// appears on its own; register those with Report.AddSecret.
func Redact(s string) string {
	lower := fold(s)
	for _, r := range redactions {
		if !containsAny(lower, r.hints) || r.assigned && !anyAssigned(lower, r.hints) {
			continue
		}
		s = r.re().ReplaceAllString(s, r.repl)
		lower = fold(s)
	}
	return s
}

// anyAssigned reports whether a hint in s is where the key = value
// pattern could match: at the end of its run of word characters (the
// pattern's keywords end there, at \b), then an optional quote and blanks,
// then ":" or "=". "authorize keys", "1 key for alice" and a path with
// authorized_keys are not: the pattern, among the slowest to compile and
// to fail, is then not needed for them.
func anyAssigned(s string, hints []string) bool {
	for _, h := range hints {
		for from := 0; ; {
			i := strings.Index(s[from:], h)
			if i < 0 {
				break
			}
			j := from + i + len(h)
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if j < len(s) && (s[j] == '"' || s[j] == '\'') {
				j++
			}
			for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\n' || s[j] == '\r' || s[j] == '\f') {
				j++
			}
			if j < len(s) && (s[j] == ':' || s[j] == '=') {
				return true
			}
			from += i + 1
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// fold lower-cases s for the hints as the patterns' (?i) matches: also
// the long s, which case-folds to s but has no lower case of its own (the
// Kelvin sign, which folds to k, lower-cases to it).
func fold(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), "\u017f", "s")
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Mask hides in s every secret the report knows (registered values and
// the patterns Redact knows), for text shown outside the report.
func (r *Report) Mask(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return newRedactor(r.secrets).str(s)
}

// redactor masks known secret values, then the patterns.
type redactor struct {
	replacer *strings.Replacer
}

// minSecret is the shortest known secret replaced verbatim: masking every
// "a" in a report to hide the password "a" would make it unreadable, and a
// password that short is no secret anyway.
const minSecret = 3

func newRedactor(secrets []string) redactor {
	var uniq []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if len(s) >= minSecret && !seen[s] {
			seen[s] = true
			uniq = append(uniq, s)
		}
	}
	// Longest first, so a secret containing another is masked whole.
	sort.Slice(uniq, func(i, j int) bool { return len(uniq[i]) > len(uniq[j]) })
	var pairs []string
	for _, s := range uniq {
		pairs = append(pairs, s, Masked)
	}
	return redactor{replacer: strings.NewReplacer(pairs...)}
}

func (r redactor) str(s string) string {
	if s == "" {
		return s
	}
	return Redact(r.replacer.Replace(s))
}

func (r redactor) err(e *Error) *Error {
	if e == nil {
		return nil
	}
	c := *e
	c.Message, c.Origin = r.str(c.Message), r.str(c.Origin)
	return &c
}

// redacted returns a deep copy of r with every free-text string masked.
// Digests, sizes and times are kept. The caller holds r.mu.
func (r *Report) redacted() *Report {
	red := newRedactor(r.secrets)
	c := &Report{
		Version:    r.Version,
		Kind:       r.Kind,
		Path:       red.str(r.Path),
		Status:     r.Status,
		Result:     r.Result,
		Reason:     red.str(r.Reason),
		InstanceID: r.InstanceID,
		// Where the id came from and the boot verdict name paths only;
		// the diff is masked when it is made and again here.
		InstanceIDFrom: red.str(r.InstanceIDFrom),
		Boot:           red.str(r.Boot),
		Diff:           red.str(r.Diff),
		Snapshot:       r.Snapshot,
		Started:        r.Started,
		Finished:       r.Finished,
		Duration:       r.Duration,
		Sources:        make([]Source, len(r.Sources)),
		Documents:      make([]Document, len(r.Documents)),
		Modules:        make([]*Module, len(r.Modules)),
		Error:          red.err(r.Error),
	}
	for _, t := range r.Target {
		c.Target = append(c.Target, red.str(t))
	}
	for _, e := range r.Errors {
		c.Errors = append(c.Errors, red.err(e))
	}
	for i, s := range r.Sources {
		s.Location, s.Error, s.Reason = red.str(s.Location), red.str(s.Error), red.str(s.Reason)
		c.Sources[i] = s
	}
	for i, d := range r.Documents {
		d.Origin = red.str(d.Origin)
		c.Documents[i] = d
	}
	for _, w := range r.Warnings {
		c.Warnings = append(c.Warnings, red.str(w))
	}
	for i, m := range r.Modules {
		mc := *m
		mc.Steps = make([]*Step, len(m.Steps))
		for j, s := range m.Steps {
			sc := *s
			sc.Action, sc.Target, sc.Detail, sc.Origin = red.str(s.Action), red.str(s.Target), red.str(s.Detail), red.str(s.Origin)
			sc.Error = red.err(s.Error)
			if s.Output != nil {
				sc.Output = make([]string, len(s.Output))
				for k, l := range s.Output {
					sc.Output[k] = red.str(l)
				}
			}
			mc.Steps[j] = &sc
		}
		c.Modules[i] = &mc
	}
	return c
}
