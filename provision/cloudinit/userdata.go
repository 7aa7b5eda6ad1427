package cloudinit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// Content types, as cloud-init names them.
const (
	typeCloudConfig    = "text/cloud-config"
	typeCloudConfigJP  = "text/cloud-config-jsonp"
	typeArchive        = "text/cloud-config-archive"
	typeShellScript    = "text/x-shellscript"
	typeBoothook       = "text/cloud-boothook"
	typeInclude        = "text/x-include-url"
	typeIncludeOnce    = "text/x-include-once-url"
	typePartHandler    = "text/part-handler"
	typeJinja          = "text/jinja2"
	typePlain          = "text/plain"
	typeNotMultipart   = "text/x-not-multipart"
	typeShellPerBoot   = "text/x-shellscript-per-boot"
	typeShellPerInst   = "text/x-shellscript-per-instance"
	typeShellPerOnce   = "text/x-shellscript-per-once"
	typeOctetStream    = "application/octet-stream"
	maxIncludeDepth    = 8
	maxMIMEDepth       = 16
	maxParts           = 4096
	defaultMaxDecomp   = 64 << 20
	mimeSniffLen       = 4096
	gzipMagic0, gzip1  = 0x1f, 0x8b
	jinjaHeader        = "## template: jinja"
	jinjaNotSupported  = "jinja templates are not supported"
	includeUnsupported = "#include is not supported here"
)

// startsWith maps a payload's first characters to its type; longest first,
// compared case-insensitively after leading white space, as cloud-init's
// type_from_starts_with.
var startsWith = []struct{ prefix, ctype string }{
	{"#cloud-config-archive", typeArchive},
	{"#cloud-config-jsonp", typeCloudConfigJP},
	{jinjaHeader, typeJinja},
	{"#cloud-boothook", typeBoothook},
	{"#include-once", typeIncludeOnce},
	{"#part-handler", typePartHandler},
	{"#cloud-config", typeCloudConfig},
	{"#include", typeInclude},
	{"#!", typeShellScript},
}

func typeFromStartsWith(payload []byte) string {
	lc := bytes.ToLower(bytes.TrimLeft(payload, " \t\r\n\v\f"))
	for _, s := range startsWith {
		if bytes.HasPrefix(lc, []byte(s.prefix)) {
			return s.ctype
		}
	}
	return ""
}

// decompTypes are the content types cloud-init gunzips before looking again.
var decompTypes = map[string]bool{
	"application/gzip": true, "application/gzip-compressed": true, "application/gzipped": true,
	"application/x-compress": true, "application/x-compressed": true, "application/x-gunzip": true,
	"application/x-gzip": true, "application/x-gzip-compressed": true,
}

// part is one unit of user-data after MIME, gzip, include and archive
// processing, ready for a handler.
type part struct {
	ctype     string
	payload   []byte
	origin    config.Origin // File names the part ("user-data#part-002")
	name      string        // file name, from Content-Disposition or part-NNN
	mergeType string        // Merge-Type / X-Merge-Type header
}

// processor turns one user-data (or vendor-data) blob into parts.
type processor struct {
	ctx    context.Context
	opts   *Options
	budget *int64 // decompressed bytes still allowed for the whole Parse
	warn   func(config.Origin, string)
	parts  []part
	base   config.Origin
	// launchIndex is the instance's ami-launch-index; nil when the
	// meta-data gives none, and then every part is kept.
	launchIndex *int
}

// keepLaunch is cloud-init's launch-index filter for one part or archive
// entry: with an instance index, a part naming another index (or one that
// is not a number) is dropped; without one, every part is kept, which a
// warning says, since the part may be meant for another instance.
func (p *processor) keepLaunch(value string, o config.Origin) bool {
	if p.launchIndex == nil {
		p.warn(o, fmt.Sprintf("launch-index %q not applied: the meta-data gives no ami-launch-index, so the part is kept", value))
		return true
	}
	i, err := strconv.Atoi(strings.TrimSpace(value))
	return err == nil && i == *p.launchIndex
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == gzipMagic0 && b[1] == gzip1 }

// gunzip decompresses with the Parse-wide budget: it never holds more than
// the remaining budget plus one byte, so a bomb is cut early.
func (p *processor) gunzip(data []byte, origin config.Origin) ([]byte, error) {
	return gunzipLimited(data, p.budget, origin)
}

func gunzipLimited(data []byte, budget *int64, origin config.Origin) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, &config.Error{Origin: origin, Message: "gzip: " + err.Error()}
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(zr, *budget+1))
	if err != nil {
		return nil, &config.Error{Origin: origin, Message: "gzip: " + err.Error()}
	}
	if n > *budget {
		return nil, &config.Error{Origin: origin, Message: "gzip: decompressed data exceeds the limit (MaxDecompressed)"}
	}
	*budget -= n
	return buf.Bytes(), nil
}

func (p *processor) partOrigin(name string) config.Origin {
	o := p.base
	if name != "" {
		o.File += "#" + name
	}
	return o
}

// process is cloud-init's convert_string + _process_msg for one blob.
func (p *processor) process(data []byte, origin config.Origin, depth int) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if isGzip(data) {
		var err error
		if data, err = p.gunzip(data, origin); err != nil {
			return err
		}
	}
	sniff := data
	if len(sniff) > mimeSniffLen {
		sniff = sniff[:mimeSniffLen]
	}
	if bytes.Contains(bytes.ToLower(sniff), []byte("mime-version:")) {
		msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return &config.Error{Origin: origin, Message: "MIME: " + err.Error()}
		}
		body, err := io.ReadAll(msg.Body)
		if err != nil {
			return &config.Error{Origin: origin, Message: "MIME: " + err.Error()}
		}
		return p.walk(textproto.MIMEHeader(msg.Header), body, origin, depth, 0)
	}
	return p.handlePayload(typeNotMultipart, data, "", "", origin, depth)
}

// walk visits a MIME entity and its children in order.
func (p *processor) walk(h textproto.MIMEHeader, body []byte, origin config.Origin, depth, nest int) error {
	if nest > maxMIMEDepth {
		return &config.Error{Origin: origin, Message: fmt.Sprintf("MIME: multipart nested too deeply (more than %d levels, the limit)", maxMIMEDepth)}
	}
	if li := h.Get("Launch-Index"); li != "" && !p.keepLaunch(li, p.partOrigin(nameOr(partFilename(h), len(p.parts)+1))) {
		return nil
	}
	ctype := typePlain
	var params map[string]string
	if ct := h.Get("Content-Type"); ct != "" {
		var err error
		ctype, params, err = mime.ParseMediaType(ct)
		if err != nil {
			return &config.Error{Origin: origin, Message: fmt.Sprintf("MIME: Content-Type %q: %v", ct, err)}
		}
	}
	if strings.HasPrefix(ctype, "multipart/") {
		boundary := params["boundary"]
		if boundary == "" {
			return &config.Error{Origin: origin, Message: "MIME: multipart without a boundary"}
		}
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			mp, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return &config.Error{Origin: origin, Message: "MIME: " + err.Error()}
			}
			pb, err := io.ReadAll(mp)
			if err != nil {
				return &config.Error{Origin: origin, Message: "MIME: " + err.Error()}
			}
			if len(p.parts) > maxParts {
				return &config.Error{Origin: origin, Message: fmt.Sprintf("MIME: more than %d parts, the limit", maxParts)}
			}
			if err := p.walk(mp.Header, pb, origin, depth, nest+1); err != nil {
				return err
			}
		}
	}
	name := partFilename(h)
	payload, err := decodeTransfer(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return &config.Error{Origin: p.partOrigin(nameOr(name, len(p.parts)+1)), Message: "MIME: " + err.Error()}
	}
	mt := h.Get("Merge-Type")
	if mt == "" {
		mt = h.Get("X-Merge-Type")
	}
	return p.handlePayload(ctype, payload, name, mt, origin, depth)
}

// partFilename is the file name a part's Content-Disposition gives, or "".
func partFilename(h textproto.MIMEHeader) string {
	if cd := h.Get("Content-Disposition"); cd != "" {
		if _, dp, err := mime.ParseMediaType(cd); err == nil {
			return dp["filename"]
		}
	}
	return ""
}

func nameOr(name string, n int) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("part-%03d", n)
}

func decodeTransfer(cte string, body []byte) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		b, err := decodeBase64Lenient(string(body))
		if err != nil {
			return nil, fmt.Errorf("base64 part: %v", err)
		}
		return b, nil
	case "quoted-printable":
		return io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
	}
	return body, nil
}

// handlePayload decides a leaf's type (gunzipping and sniffing as cloud-init
// does) and either expands it (include, archive) or records it as a part.
func (p *processor) handlePayload(ctype string, payload []byte, name, mergeType string, origin config.Origin, depth int) error {
	partName := nameOr(name, len(p.parts)+1)
	po := origin
	if ctype != typeNotMultipart {
		po = p.partOrigin(partName)
	}
	if decompTypes[ctype] || isGzip(payload) {
		var err error
		if payload, err = p.gunzip(payload, po); err != nil {
			return err
		}
		ctype = ""
	}
	if ctype == "" {
		ctype = typePlain
	}
	sniffed := ""
	if ctype == typePlain || ctype == typeNotMultipart || ctype == typeShellScript {
		sniffed = typeFromStartsWith(payload)
	}
	if sniffed != "" {
		ctype = sniffed
	}
	switch ctype {
	case typeInclude, typeIncludeOnce:
		return p.include(payload, po, depth)
	case typeArchive:
		return p.archive(payload, po)
	}
	p.parts = append(p.parts, part{ctype: ctype, payload: payload, origin: po, name: partName, mergeType: mergeType})
	return nil
}

// include fetches each URL of an #include list and processes what it gets.
func (p *processor) include(payload []byte, origin config.Origin, depth int) error {
	if depth >= maxIncludeDepth {
		return &config.Error{Origin: origin, Message: fmt.Sprintf("#include nested too deeply (more than %d levels, the limit)", maxIncludeDepth)}
	}
	for i, line := range strings.Split(string(payload), "\n") {
		line = strings.TrimRight(line, "\r")
		lc := strings.ToLower(line)
		switch {
		case strings.HasPrefix(lc, "#include-once"):
			line = strings.TrimLeft(line[len("#include-once"):], " \t")
		case strings.HasPrefix(lc, "#include"):
			line = strings.TrimLeft(line[len("#include"):], " \t")
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		url := strings.TrimSpace(line)
		if url == "" {
			continue
		}
		lo := origin
		lo.Line = i + 1
		if p.opts.FetchInclude == nil {
			return &config.Error{Origin: lo, Message: fmt.Sprintf("%s (%s)", includeUnsupported, url)}
		}
		data, err := p.opts.FetchInclude(p.ctx, url)
		if errors.Is(err, ErrNotFetched) {
			p.warn(lo, fmt.Sprintf("#include %s: %v", url, err))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: #include %s: %w", lo, url, err)
		}
		incOrigin := config.Origin{Source: origin.Source, File: url}
		if err := p.process(data, incOrigin, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// archive expands a #cloud-config-archive: a YAML list of strings or
// {content, type, filename, launch-index, <headers>} mappings.
func (p *processor) archive(payload []byte, origin config.Origin) error {
	body := payload
	if i := bytes.IndexByte(body, '\n'); i >= 0 {
		// Keep line numbers: blank the header line instead of removing it.
		body = append([]byte(strings.Repeat(" ", i)), body[i:]...)
	} else {
		body = nil
	}
	tree, err := parseYAML(body, origin, p.warn)
	if err != nil {
		return err
	}
	if tree == nil {
		return nil
	}
	if tree.kind != kSeq {
		return &config.Error{Origin: tree.origin, Message: "cloud-config-archive: expected a list, got " + tree.describe()}
	}
	// Archive entries are parts too, under the same limit as MIME's.
	if n := len(p.parts) + len(tree.items); n > maxParts {
		return &config.Error{Origin: tree.origin, Message: fmt.Sprintf("cloud-config-archive: %d entries and parts, more than the limit of %d", n, maxParts)}
	}
	for i, ent := range tree.items {
		var content *node
		ctype, name, mergeType := "", "", ""
		switch ent.kind {
		case kStr, kBinary:
			content = ent
		case kMap:
			content = ent.get("content")
			if t := ent.get("type"); t != nil && t.kind == kStr {
				ctype = t.value
			}
			if f := ent.get("filename"); f != nil && f.isScalar() {
				name = f.value
			}
			for j, k := range ent.keys {
				switch strings.ToLower(k.value) {
				case "merge-type", "x-merge-type":
					if ent.vals[j].kind == kStr {
						mergeType = ent.vals[j].value
					}
				}
			}
			if li := ent.get("launch-index"); li != nil && li.isScalar() && !p.keepLaunch(li.value, li.origin) {
				continue
			}
		default:
			continue // cloud-init skips these silently
		}
		var data []byte
		if content != nil && content.kind != kNull {
			if !content.isScalar() {
				return &config.Error{Origin: content.origin, Message: fmt.Sprintf("cloud-config-archive[%d].content: expected string, got %s", i, content.describe())}
			}
			data = []byte(content.value)
		}
		if ctype == "" {
			ctype = typeFromStartsWith(data)
			if ctype == "" {
				ctype = typeCloudConfig
				if content != nil && content.kind == kBinary {
					ctype = typeOctetStream
				}
			}
		}
		partName := nameOr(name, len(p.parts)+1)
		p.parts = append(p.parts, part{ctype: ctype, payload: data, origin: p.partOrigin(partName), name: partName, mergeType: mergeType})
	}
	return nil
}

// DecodeBase64UserData decodes user-data that a source delivers base64
// encoded (EC2 user-data given with --user-data fileb:// is raw, but some
// tools and metadata services hand it over base64 encoded). White space is
// ignored; padding is optional.
func DecodeBase64UserData(data []byte) ([]byte, error) {
	clean := make([]byte, 0, len(data))
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		clean = append(clean, c)
	}
	s := strings.TrimRight(string(clean), "=")
	out, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("user-data is not valid base64: " + err.Error())
	}
	return out, nil
}
