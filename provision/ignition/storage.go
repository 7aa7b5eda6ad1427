package ignition

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// Ignition's defaults: files 0644, directories 0755, overwrite false.
const (
	defaultFileMode fs.FileMode = 0o644
)

func (p *parser) storage(n *node) {
	const sp = "storage"
	f := p.fields(n, sp, map[string]int{
		"directories": 0, "disks": 0, "files": 0, "filesystems": 0, "links": 0, "raid": 0, "luks": 2,
	})
	const noDisks = "provision applies a config inside a snapshot of the installed root; partitioning, RAID, LUKS and creating filesystems are"
	const instead = "lay out the disks when the image is built or installed (or from a Combustion script), and mount a filesystem that exists with a .mount unit in systemd.units"
	p.refuseNonEmptyInstead(f, sp, "disks", noDisks, instead)
	p.refuseNonEmptyInstead(f, sp, "raid", noDisks, instead)
	p.refuseNonEmptyInstead(f, sp, "luks", noDisks, instead)
	p.refuseNonEmptyInstead(f, sp, "filesystems", noDisks, instead)
	// Links first: files and directories below a link are an error in
	// Ignition, and links are needed to check that.
	for i, l := range p.list(f, sp, "links") {
		p.link(l, index("storage.links", i))
	}
	for i, d := range p.list(f, sp, "directories") {
		p.directory(d, index("storage.directories", i))
	}
	for i, fl := range p.list(f, sp, "files") {
		p.file(fl, index("storage.files", i))
	}
}

// nodeCommon reads what files, directories and links share (Ignition's
// Node): path, overwrite, user and group.
type nodeCommon struct {
	path         string
	overwrite    *bool
	owner, group string
}

func (p *parser) node(n *node, path, kind string, f map[string]*node) (nodeCommon, bool) {
	var c nodeCommon
	s := p.str(f, path, "path")
	if s == nil {
		p.failf(n.off, path, "path is required")
		return c, false
	}
	c.path = *s
	if err := checkIgnitionPath(c.path); err != nil {
		p.fail(f["path"].off, join(path, "path"), err)
		return c, false
	}
	if prev, dup := p.seen("node\x00"+c.path, n.off); dup {
		p.failf(n.off, path, "%s is defined twice in storage (also at %s)", c.path, p.lineCol(prev))
		return c, false
	}
	for _, l := range p.linkPaths {
		if strings.HasPrefix(c.path, l.path+"/") {
			p.failf(n.off, path, "%s %s is below the link %s (at %s)", kind, c.path, l.path, p.lineCol(l.off))
			return c, false
		}
	}
	c.overwrite = p.boolean(f, path, "overwrite")
	c.owner = p.idOrName(f, path, "user")
	c.group = p.idOrName(f, path, "group")
	return c, true
}

// checkIgnitionPath applies Ignition's rule (absolute and already clean)
// and ours (no "..", which a clean absolute path cannot hold anyway).
func checkIgnitionPath(p string) error {
	if p == "" {
		return errors.New("path is empty")
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is not absolute", p)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("path %q is not clean (should be %q)", p, path.Clean(p))
	}
	return config.CheckPath(p)
}

func (p *parser) idOrName(f map[string]*node, path, key string) string {
	n, ok := f[key]
	if !ok {
		return ""
	}
	kp := join(path, key)
	o := p.fields(n, kp, map[string]int{"id": 0, "name": 0})
	id := p.integer(o, kp, "id")
	name := p.str(o, kp, "name")
	switch {
	case id != nil && name != nil && *name != "":
		p.failf(n.off, kp, "set either id or name, not both")
		return ""
	case id != nil:
		if *id < 0 {
			p.failf(o["id"].off, join(kp, "id"), "must not be negative")
			return ""
		}
		return strconv.Itoa(*id)
	case name != nil:
		return *name
	}
	return ""
}

func (p *parser) mode(f map[string]*node, path string) *fs.FileMode {
	m := p.integer(f, path, "mode")
	if m == nil {
		return nil
	}
	if *m < 0 || *m > 0o7777 {
		p.failf(f["mode"].off, join(path, "mode"), "%d is not a valid mode (0 to 4095, i.e. 07777, written in decimal)", *m)
		return nil
	}
	if *m&0o7000 != 0 && p.minorAt(f["mode"].off) < specialBitsMinor {
		// Ignition applies these bits from spec 3.6.0 on; an older config
		// is translated with them masked off (after it had applied
		// nothing of them), so a config written for it never gets a
		// setuid file it did not get there.
		masked := *m &^ 0o7000
		p.warn(f["mode"].off, join(path, "mode"), "setuid/setgid/sticky bits of %#o ignored as Ignition ignores them in spec 3.%d.0 (mode %#o applied); spec 3.6.0 applies them", *m, p.minorAt(f["mode"].off), masked)
		*m = masked
	}
	fm := fs.FileMode(*m)
	return &fm
}

func (p *parser) file(n *node, path string) {
	f := p.fields(n, path, map[string]int{
		"path": 0, "overwrite": 0, "user": 0, "group": 0, "contents": 0, "append": 0, "mode": 0,
	})
	if f == nil {
		return
	}
	c, ok := p.node(n, path, "file", f)
	if !ok {
		return
	}
	mode := p.mode(f, path)
	file := config.File{
		Origin:    p.at(n.off),
		Path:      c.path,
		Mode:      mode,
		Owner:     c.owner,
		Group:     c.group,
		Overwrite: c.overwrite,
	}
	if file.Overwrite == nil {
		no := false
		file.Overwrite = &no
	}
	hasSource := false
	if cn, ok := f["contents"]; ok {
		var ok bool
		hasSource, ok = p.resource(cn, join(path, "contents"), &file)
		if !ok {
			return
		}
	}
	if *file.Overwrite && !hasSource {
		p.failf(n.off, path, "overwrite is true but contents.source is not set (Ignition refuses this too)")
		return
	}
	if hasSource && file.Mode == nil {
		// Without contents an existing file keeps its mode (Ignition);
		// leaving Mode unset lets the files module decide that.
		m := defaultFileMode
		file.Mode = &m
	}
	p.out.Files = append(p.out.Files, file)
	for i, a := range p.list(f, path, "append") {
		ap := index(join(path, "append"), i)
		frag := config.File{Origin: p.at(a.off), Path: c.path, Append: true}
		has, ok := p.resource(a, ap, &frag)
		if !ok {
			continue
		}
		if !has {
			p.failf(a.off, ap, "source is required for an append fragment")
			continue
		}
		p.out.Files = append(p.out.Files, frag)
	}
}

// resource reads a contents or append object into file. hasSource is
// Ignition's "contents.source is set" (an empty string counts: it means an
// empty file).
func (p *parser) resource(n *node, path string, file *config.File) (hasSource, ok bool) {
	f := p.fields(n, path, map[string]int{"compression": 0, "source": 0, "verification": 0, "httpHeaders": 1})
	if f == nil {
		return false, false
	}
	before := len(p.errs)
	src := p.str(f, path, "source")
	comp := p.str(f, path, "compression")
	var hash *string
	if v, ok := f["verification"]; ok {
		vf := p.fields(v, join(path, "verification"), map[string]int{"hash": 0})
		hash = p.str(vf, join(path, "verification"), "hash")
		if hash != nil {
			if err := checkHash(*hash); err != nil {
				p.fail(vf["hash"].off, join(path, "verification.hash"), err)
			}
		}
	}
	if comp != nil && *comp != "" && *comp != "gzip" {
		p.failf(f["compression"].off, join(path, "compression"), "unknown compression %q (gzip is the only one)", *comp)
	}
	if src == nil {
		if hash != nil {
			p.failf(n.off, path, "verification.hash is set but source is not")
		}
		p.headers(f, path, "")
		return false, len(p.errs) == before
	}
	for _, h := range p.headers(f, path, urlScheme(*src)) {
		if h.hasValue {
			file.Headers = append(file.Headers, config.HTTPHeader{Name: h.name, Value: h.value})
		}
	}
	gz := comp != nil && *comp == "gzip"
	srcOff := f["source"].off
	sp := join(path, "source")
	switch scheme := urlScheme(*src); scheme {
	case "":
		if *src != "" {
			p.failf(srcOff, sp, "%q is not a URL", *src)
			break
		}
		file.Contents = []byte{}
	case "data":
		data, err := decodeDataURL(*src)
		if err != nil {
			p.fail(srcOff, sp, err)
			break
		}
		if gz {
			if data, err = gunzip(data); err != nil {
				p.fail(srcOff, sp, err)
				break
			}
		}
		// The hash describes the decompressed data (Ignition's docs); a
		// data: URL is checked now, so a mismatch fails before any write.
		if hash != nil && checkHash(*hash) == nil {
			if err := verifyHash(*hash, data); err != nil {
				p.fail(f["verification"].off, join(path, "verification.hash"), err)
				break
			}
		}
		file.Contents = data
	case "http", "https":
		if _, err := url.Parse(*src); err != nil {
			p.failf(srcOff, sp, "invalid URL: %v", err)
			break
		}
		if gz {
			p.unsupported(f["compression"].off, join(path, "compression"), "gzip compression of remote (http/https) contents is")
			break
		}
		file.Source = *src
		if hash != nil {
			file.Hash = *hash
		}
	case "tftp", "s3", "gs", "arn":
		p.fail(srcOff, sp, unreachableScheme(scheme))
	default:
		p.failf(srcOff, sp, "unknown URL scheme %q (Ignition knows http, https, tftp, s3, arn, gs and data)", scheme)
	}
	return true, len(p.errs) == before
}

func urlScheme(s string) string {
	i := strings.IndexByte(s, ':')
	if i <= 0 {
		return ""
	}
	for j, r := range s[:i] {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || j > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')
		if !ok {
			return ""
		}
	}
	return strings.ToLower(s[:i])
}

// decodeDataURL decodes an RFC 2397 URL: data:[<mediatype>][;base64],<data>.
// The data is percent-decoded, then base64-decoded when ;base64 is given.
func decodeDataURL(u string) ([]byte, error) {
	rest := u[len("data:"):]
	header, payload, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, errors.New("data: URL has no comma before its data")
	}
	isBase64 := false
	params := strings.Split(header, ";")
	if len(params) > 1 && strings.EqualFold(strings.TrimSpace(params[len(params)-1]), "base64") {
		isBase64 = true
		params = params[:len(params)-1]
	}
	if mt := strings.TrimSpace(params[0]); mt != "" && !strings.Contains(mt, "/") {
		return nil, fmt.Errorf("data: URL has an invalid media type %q", mt)
	}
	for _, prm := range params[1:] {
		if !strings.Contains(prm, "=") {
			return nil, fmt.Errorf("data: URL has an invalid parameter %q", prm)
		}
	}
	raw, err := url.PathUnescape(payload)
	if err != nil {
		return nil, fmt.Errorf("data: URL: invalid percent-encoding: %w", err)
	}
	if !isBase64 {
		return []byte(raw), nil
	}
	data, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		// Padding is optional in practice (browsers and Ignition's decoder
		// accept it missing).
		data, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(raw, "="))
		if err != nil {
			return nil, fmt.Errorf("data: URL: invalid base64: %w", err)
		}
	}
	return data, nil
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if len(out) > MaxDecompressed {
		return nil, fmt.Errorf("gzip: contents larger than %d MiB once decompressed", MaxDecompressed>>20)
	}
	return out, nil
}

func checkHash(h string) error {
	fn, sum, ok := strings.Cut(h, "-")
	if !ok {
		return fmt.Errorf("hash %q is not of the form sha512-<hex> or sha256-<hex>", h)
	}
	var size int
	switch fn {
	case "sha512":
		size = sha512.Size
	case "sha256":
		size = sha256.Size
	default:
		return fmt.Errorf("hash function %q is not supported (sha512 and sha256 are)", fn)
	}
	if b, err := hex.DecodeString(sum); err != nil || len(b) != size {
		return fmt.Errorf("hash %q: the %s sum must be %d hex digits", h, fn, 2*size)
	}
	return nil
}

func verifyHash(h string, data []byte) error {
	fn, sum, _ := strings.Cut(h, "-")
	var got []byte
	if fn == "sha512" {
		s := sha512.Sum512(data)
		got = s[:]
	} else {
		s := sha256.Sum256(data)
		got = s[:]
	}
	if want, _ := hex.DecodeString(sum); !bytes.Equal(got, want) {
		return fmt.Errorf("contents do not match %s (got %s-%x)", h, fn, got)
	}
	return nil
}

func (p *parser) directory(n *node, path string) {
	f := p.fields(n, path, map[string]int{"path": 0, "overwrite": 0, "user": 0, "group": 0, "mode": 0})
	if f == nil {
		return
	}
	c, ok := p.node(n, path, "directory", f)
	if !ok {
		return
	}
	// overwrite: true removes whatever is at the path first, a directory's
	// contents included, as Ignition does (the files module applies it).
	p.out.Directories = append(p.out.Directories, config.Directory{
		Origin:    p.at(n.off),
		Path:      c.path,
		Mode:      p.mode(f, path),
		Owner:     c.owner,
		Group:     c.group,
		Overwrite: c.overwrite,
	})
}

func (p *parser) link(n *node, path string) {
	f := p.fields(n, path, map[string]int{"path": 0, "overwrite": 0, "user": 0, "group": 0, "target": 0, "hard": 0})
	if f == nil {
		return
	}
	c, ok := p.node(n, path, "link", f)
	if !ok {
		return
	}
	p.linkPaths = append(p.linkPaths, nodeDef{path: c.path, kind: "link", off: n.off})
	target := p.str(f, path, "target")
	if target == nil || *target == "" {
		p.failf(n.off, path, "target is required")
		return
	}
	l := config.Link{
		Origin:    p.at(n.off),
		Path:      c.path,
		Target:    *target,
		Owner:     c.owner,
		Group:     c.group,
		Overwrite: c.overwrite,
	}
	if l.Overwrite == nil {
		no := false
		l.Overwrite = &no
	}
	if h := p.boolean(f, path, "hard"); h != nil && *h {
		l.Hard = true
		if c.owner != "" || c.group != "" {
			p.warn(n.off, path, "user and group are ignored for hard links")
			l.Owner, l.Group = "", ""
		}
		if !strings.HasPrefix(l.Target, "/") {
			// Ignition joins a relative hard-link target to the root it
			// writes into. Not cleaned: config.Validate refuses a "..".
			l.Target = "/" + l.Target
		}
	}
	p.out.Links = append(p.out.Links, l)
}
