package packages

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/provision/config"
)

// Where repository definitions go in the target.
const (
	ZypperRepoDir   = "/etc/zypp/repos.d"
	YumRepoDir      = "/etc/yum.repos.d"
	AptSourcesDir   = "/etc/apt/sources.list.d"
	AptTrustedDir   = "/etc/apt/trusted.gpg.d"
	AptKeyringDir   = "/etc/apt/keyrings"
	addAptRepoMatch = `^[\w-]+:\w` // cloud-init's add_apt_repo_match default
)

var aptRepoRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(addAptRepoMatch) })

// family maps a repository's Manager field to the family that reads it.
func family(manager string) (Family, bool) {
	switch manager {
	case "zypper":
		return Zypper, true
	case "yum", "dnf":
		return DNF, true
	case "apt":
		return Apt, true
	}
	return "", false
}

// repoSteps plans every repository. A repository for another family than
// the target's is skipped, as cloud-init skips cc_zypper_add_repo on
// Fedora and cc_yum_add_repo on openSUSE (its modules are distro-bound), so
// one config can carry repositories for several distributions.
func repoSteps(repos []config.Repository, t *target) ([]modules.Step, error) {
	var steps []modules.Step
	seen := map[string]config.Origin{} // zypper/yum file -> first definition
	apt := &aptState{files: map[string][]byte{}}
	for _, r := range repos {
		fam, ok := family(r.Manager)
		if !ok {
			return nil, fmt.Errorf("%s: repository %q: unknown package manager %q", r.Origin, r.Name, r.Manager)
		}
		if t.mgr != nil && t.mgr.Family != fam {
			steps = append(steps, skipStep(r, fmt.Sprintf("the target uses %s", t.mgr.Label)))
			continue
		}
		var (
			st  []modules.Step
			err error
		)
		switch fam {
		case Zypper, DNF:
			st, err = iniRepoStep(r, fam, t, seen)
		case Apt:
			st, err = apt.steps(r, t)
		}
		if err != nil {
			return nil, err
		}
		steps = append(steps, st...)
	}
	return steps, nil
}

func skipStep(r config.Repository, why string) modules.Step {
	return modules.Step{
		Module: Module, Action: "skip " + r.Manager + " repository", Target: r.Name, Detail: why, Origin: r.Origin,
		Apply: func(_ context.Context, env *modules.Env) error {
			if env.Console != nil {
				fmt.Fprintf(env.Console, "packages: %s repository %s not added: %s [%s]\n", r.Manager, r.Name, why, r.Origin)
			}
			return nil
		},
	}
}

// iniRepoStep writes a zypper or yum .repo file. A second definition of
// the same file is skipped, as cloud-init does ("already pending"); an
// existing file with other content is replaced (cloud-init would keep it
// and drop the user's repository with only a log line).
func iniRepoStep(r config.Repository, fam Family, t *target, seen map[string]config.Origin) ([]modules.Step, error) {
	p, data, err := RenderRepo(r)
	if err != nil {
		return nil, err
	}
	if o, dup := seen[p]; dup {
		return []modules.Step{skipStep(r, fmt.Sprintf("%s is already defined at %s", p, o))}, nil
	}
	seen[p] = r.Origin
	action := "add " + r.Manager + " repository"
	if t.root != nil {
		if old, err := t.root.ReadFile(p); err == nil {
			if bytes.Equal(old, data) {
				return nil, nil
			}
			action = "replace " + r.Manager + " repository"
		}
	}
	detail := p
	if r.BaseURL != "" {
		detail += ", " + firstLine(r.BaseURL)
	}
	if signaturesOff(r) {
		detail += "; gpgcheck off: its packages are installed without signature checks"
	}
	return []modules.Step{{
		Module: Module, Action: action, Target: r.Name, Detail: detail, Origin: r.Origin,
		Apply: writeFile(p, data, 0o644),
	}}, nil
}

// signaturesOff tells whether r switches package signature checking off,
// which the plan must say: it is how test and local repositories are
// added, and a mistake anywhere else.
func signaturesOff(r config.Repository) bool {
	if r.Options == nil {
		return r.GPGCheck != nil && !*r.GPGCheck
	}
	for k, v := range r.Options {
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		if k != "gpgcheck" && k != "pkg_gpgcheck" {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(v)) {
		case "0", "false", "no", "off":
			return true
		}
	}
	return false
}

// RenderRepo returns the path and content of a zypper or yum repository
// file for r.
func RenderRepo(r config.Repository) (string, []byte, error) {
	fam, ok := family(r.Manager)
	if !ok || fam == Apt {
		return "", nil, fmt.Errorf("%s: repository %q: not a zypper or yum repository", r.Origin, r.Name)
	}
	if r.Name == "" || strings.ContainsAny(r.Name, "/[]\n\r\x00") || strings.TrimSpace(r.Name) != r.Name {
		return "", nil, fmt.Errorf("%s: invalid repository id %q", r.Origin, r.Name)
	}
	opts, err := repoOptions(r, fam)
	if err != nil {
		return "", nil, err
	}
	if fam == Zypper {
		return path.Join(ZypperRepoDir, strings.ReplaceAll(r.Name, " ", "_")+".repo"), renderZypper(r.Name, opts), nil
	}
	id := strings.ReplaceAll(r.Name, " ", "-")
	return path.Join(YumRepoDir, id+".repo"), renderYum(id, opts), nil
}

type kv struct{ key, value string }

// validKey is what an INI key may be after cloud-init's normalisation
// (lower case, '-' -> '_'); anything else could break the file's syntax.
var validKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9_.:@+]+$`) })

// repoOptions normalises keys as cloud-init does (lower case, trimmed, '-'
// -> '_'), drops zypper's "id" (it names the section), adds zypper's
// defaults, and orders them. The model keeps options in a map, so the
// user's order is lost; see orderKeys.
func repoOptions(r config.Repository, fam Family) ([]kv, error) {
	src := r.Options
	if src == nil {
		src = map[string]string{}
		if r.BaseURL != "" {
			src["baseurl"] = r.BaseURL
		}
		if r.Enabled != nil {
			src["enabled"] = boolValue(*r.Enabled)
		}
		if r.GPGCheck != nil {
			src["gpgcheck"] = boolValue(*r.GPGCheck)
		}
		if r.GPGKey != "" {
			src["gpgkey"] = r.GPGKey
		}
	}
	m := map[string]string{}
	for k, v := range src {
		if fam == Zypper && k == "id" {
			continue
		}
		nk := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "-", "_")
		if nk == "" {
			continue
		}
		if !validKey().MatchString(nk) {
			return nil, fmt.Errorf("%s: repository %q: invalid option name %q", r.Origin, r.Name, k)
		}
		if strings.ContainsAny(v, "\r\x00") {
			return nil, fmt.Errorf("%s: repository %q: option %s: invalid value", r.Origin, r.Name, k)
		}
		m[nk] = v
	}
	var defaults []kv
	if fam == Zypper {
		for _, k := range []string{"enabled", "autorefresh"} {
			if _, ok := m[k]; !ok {
				defaults = append(defaults, kv{k, "1"})
			}
		}
	}
	return append(orderKeys(m, fam), defaults...), nil
}

// orderKeys: zypper files start with name, baseurl, enabled, autorefresh
// (the order of cloud-init's and zypper's own examples), yum files are
// alphabetical (cloud-init's yum_repos example is written that way).
// Everything else follows alphabetically.
func orderKeys(m map[string]string, fam Family) []kv {
	var lead []string
	if fam == Zypper {
		lead = []string{"name", "baseurl", "enabled", "autorefresh"}
	}
	var out []kv
	done := map[string]bool{}
	for _, k := range lead {
		if v, ok := m[k]; ok {
			out = append(out, kv{k, v})
			done[k] = true
		}
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		if !done[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		out = append(out, kv{k, m[k]})
	}
	return out
}

func boolValue(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// renderZypper writes the layout cloud-init's configobj output has —
// "[id]" then "key = value" lines — with two deliberate differences where
// that output does not work in zypper, whose INI reader neither unquotes
// nor knows triple quotes: values are never quoted (configobj quotes any
// value with a comma, '#' or surrounding quotes), and a list (gpgkey,
// baseurl) continues on lines indented by four spaces instead of being
// wrapped in ”'...”'. The file also ends with a newline, which
// cloud-init's does not.
func renderZypper(id string, opts []kv) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "[%s]\n", id)
	for _, o := range opts {
		fmt.Fprintf(&b, "%s = %s\n", o.key, strings.Join(valueLines(o.value), "\n    "))
	}
	return b.Bytes()
}

// renderYum is Python ConfigParser's layout, as cloud-init writes it: a
// header comment, "[id]", "key = value", continuation lines indented by a
// tab, and a blank line at the end. The header carries no date (cloud-init
// writes one) so that an unchanged repository plans as unchanged.
func renderYum(id string, opts []kv) []byte {
	var b bytes.Buffer
	b.WriteString("# Created by provision\n")
	fmt.Fprintf(&b, "[%s]\n", id)
	for _, o := range opts {
		fmt.Fprintf(&b, "%s = %s\n", o.key, strings.Join(valueLines(o.value), "\n\t"))
	}
	b.WriteString("\n")
	return b.Bytes()
}

// valueLines splits a list value (joined with newlines by the parser) and
// drops empty items, which would read as the end of the value.
func valueLines(v string) []string {
	parts := strings.Split(v, "\n")
	out := parts[:0]
	for i, p := range parts {
		if p = strings.TrimSpace(p); i == 0 || p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// ---- apt ----

// aptState carries what earlier apt sources did to a file: cloud-init
// appends every source to its file, so two sources with one filename
// share it.
type aptState struct {
	files map[string][]byte // path -> content after the sources so far
}

// steps plans one apt source the way cc_apt_configure's add_apt_sources
// handles it: the key first (dearmored to a .gpg keyring — into
// /etc/apt/keyrings when the source refers to it as $KEY_FILE, else into
// trusted.gpg.d where apt trusts it for every source), then the source
// line appended to /etc/apt/sources.list.d/NAME.list, or handed to
// add-apt-repository for "ppa:" style sources.
func (a *aptState) steps(r config.Repository, t *target) ([]modules.Step, error) {
	opts := r.Options
	if opts == nil {
		opts = map[string]string{"source": r.BaseURL, "key": r.GPGKey}
	}
	source, key := opts["source"], opts["key"]
	if key == "" {
		key = r.GPGKey
	}
	if source == "" {
		source = r.BaseURL
	}
	if r.Name == "" || strings.ContainsAny(r.Name, "/\n\r\x00") || strings.HasPrefix(r.Name, ".") {
		return nil, fmt.Errorf("%s: invalid apt source name %q", r.Origin, r.Name)
	}
	if key == "" && opts["keyid"] != "" {
		return nil, fmt.Errorf("%s: apt source %s: keyid %s needs a key server lookup, which provision does not do; give the armored key itself as key", r.Origin, r.Name, opts["keyid"])
	}
	var steps []modules.Step
	hardened := strings.Contains(source, "$KEY_FILE") || strings.Contains(source, "${KEY_FILE}")
	keyFile := ""
	if key != "" {
		bin, err := Dearmor([]byte(key))
		if err != nil {
			return nil, fmt.Errorf("%s: apt source %s: key: %w", r.Origin, r.Name, err)
		}
		dir := AptTrustedDir
		if hardened {
			dir = AptKeyringDir
		}
		keyFile = path.Join(dir, stem(r.Name)+".gpg")
		if !unchanged(t, keyFile, bin) {
			steps = append(steps, modules.Step{
				Module: Module, Action: "add apt key", Target: keyFile, Detail: "for " + r.Name, Origin: r.Origin,
				Apply: writeFile(keyFile, bin, 0o644),
			})
		}
	} else if hardened {
		return nil, fmt.Errorf("%s: apt source %s uses $KEY_FILE but gives no key", r.Origin, r.Name)
	}
	if source == "" {
		return steps, nil
	}

	line, deferred := renderSource(source, aptParams(t, keyFile))
	if deferred != nil {
		deferred = fmt.Errorf("%s: apt source %s: %w", r.Origin, r.Name, deferred)
		if !t.bare {
			return nil, deferred
		}
	}

	if aptRepoRe().MatchString(line) {
		st := modules.Step{
			Module: Module, Action: "add apt repository", Target: line, Detail: "add-apt-repository --no-update", Origin: r.Origin,
			Apply: func(ctx context.Context, env *modules.Env) error {
				if deferred != nil {
					return deferred
				}
				return runTool(ctx, env, tool{label: "add-apt-repository", family: Apt}, invocation{
					argv: []string{"add-apt-repository", "--no-update", line}, env: aptEnv(),
					what: "add-apt-repository", origin: r.Origin,
				})
			},
		}
		if !t.bare && t.root != nil && !t.root.Exists("/usr/bin/add-apt-repository") {
			return nil, fmt.Errorf("%s: apt source %s: %q needs add-apt-repository, which the target does not have", r.Origin, r.Name, line)
		}
		return append(steps, st), nil
	}

	// cloud-init appends ".list" only to a name that lacks it.
	name := strings.TrimSuffix(r.Name, ".list")
	ext := ".list"
	if isDeb822(line) {
		// cloud-init does not support deb822 here and would write the
		// stanza into a .list file, where apt rejects it.
		ext = ".sources"
		name = strings.TrimSuffix(name, ".sources")
	}
	p := path.Join(AptSourcesDir, name+ext)
	old, ok := a.files[p]
	if !ok && t.root != nil {
		old, _ = t.root.ReadFile(p)
	}
	entry := line + "\n"
	if strings.HasSuffix(line, "\n") {
		entry = line
	}
	var data []byte
	if v := strings.ToLower(opts["append"]); v == "0" || v == "false" {
		data = []byte(entry)
	} else {
		data = appendMissing(old, entry)
	}
	a.files[p] = data
	if !unchanged(t, p, data) {
		steps = append(steps, modules.Step{
			Module: Module, Action: "add apt source", Target: r.Name, Detail: p + ", " + firstLine(line), Origin: r.Origin,
			Apply: func(ctx context.Context, env *modules.Env) error {
				if deferred != nil {
					return deferred
				}
				return writeFile(p, data, 0o644)(ctx, env)
			},
		})
	}
	return steps, nil
}

// unchanged: the target already has exactly this file.
func unchanged(t *target, p string, data []byte) bool {
	if t.root == nil {
		return false
	}
	old, err := t.root.ReadFile(p)
	return err == nil && bytes.Equal(old, data)
}

// appendMissing appends entry's lines to old unless old has them all
// already (cloud-init appends again on every run; we stay idempotent).
func appendMissing(old []byte, entry string) []byte {
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	missing := false
	for _, l := range strings.Split(strings.TrimSuffix(entry, "\n"), "\n") {
		if !have[strings.TrimSpace(l)] {
			missing = true
		}
	}
	if !missing {
		return old
	}
	out := append([]byte(nil), old...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, entry...)
}

// stem is Python's pathlib stem, which cloud-init names key files by.
func stem(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

var deb822Key = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^(Types|URIs|Suites|Components):`) })

func isDeb822(s string) bool {
	return deb822Key().MatchString(s) && strings.Contains(s, "URIs:")
}

// aptParams are the variables cloud-init offers in a source: RELEASE (the
// target's codename), MIRROR = PRIMARY and SECURITY (the distribution's
// default mirrors from cloud-init's cloud.cfg), KEY_FILE.
func aptParams(t *target, keyFile string) map[string]string {
	p := map[string]string{}
	if c := t.osRelease["VERSION_CODENAME"]; c != "" {
		p["RELEASE"] = c
	}
	ids := append([]string{t.osRelease["ID"]}, strings.Fields(t.osRelease["ID_LIKE"])...)
	for _, id := range ids {
		switch id {
		case "ubuntu":
			if runtime.GOARCH == "amd64" || runtime.GOARCH == "386" {
				p["PRIMARY"], p["SECURITY"] = "http://archive.ubuntu.com/ubuntu", "http://security.ubuntu.com/ubuntu"
			} else {
				p["PRIMARY"], p["SECURITY"] = "http://ports.ubuntu.com/ubuntu-ports", "http://ports.ubuntu.com/ubuntu-ports"
			}
		case "debian":
			p["PRIMARY"], p["SECURITY"] = "https://deb.debian.org/debian", "https://deb.debian.org/debian-security"
		default:
			continue
		}
		break
	}
	if p["PRIMARY"] != "" {
		p["MIRROR"] = p["PRIMARY"]
	}
	if keyFile != "" {
		p["KEY_FILE"] = keyFile
	}
	return p
}

var templateVar = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\$\{([A-Za-z0-9_.]+)\}|\$([A-Za-z0-9_.]+)`) })

// renderSource substitutes $NAME and ${NAME} as cloud-init's basic
// renderer does; a name it cannot resolve fails there (KeyError) and here.
// The text comes back with unresolved names left as they were.
func renderSource(s string, params map[string]string) (string, error) {
	var missing []string
	out := templateVar().ReplaceAllStringFunc(s, func(m string) string {
		sub := templateVar().FindStringSubmatch(m)
		name := sub[1]
		if name == "" {
			name = sub[2]
		}
		if v, ok := params[name]; ok {
			return v
		}
		missing = append(missing, "$"+name)
		return m
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("cannot substitute %s (known for this target: %s)", strings.Join(missing, ", "), knownParams(params))
	}
	return out, nil
}

func knownParams(p map[string]string) string {
	var k []string
	for n := range p {
		k = append(k, "$"+n)
	}
	sort.Strings(k)
	if len(k) == 0 {
		return "none"
	}
	return strings.Join(k, " ")
}
