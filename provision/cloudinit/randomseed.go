package cloudinit

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/provision-dev/provision/provision/config"
)

// randomSeed reads random_seed as cloud-init's seed_random does: file
// (default /dev/urandom), data decoded per encoding (raw, base64/b64,
// gzip/gz; none is raw), command (an argv list) and command_required.
// Decoding happens here so a bad encoding is an error before anything is
// written, as it would make cloud-init's module fail.
func (p *parser) randomSeed(n *node) {
	if n == nil || n.kind == kNull {
		return
	}
	if n.kind != kMap {
		p.typeErr(n, "random_seed", "mapping")
		return
	}
	rs := &config.RandomSeed{Origin: n.origin, File: "/dev/urandom"}
	var data, enc *node
	ok := true
	for i, k := range n.keys {
		v := n.vals[i]
		path := "random_seed." + k.value
		switch k.value {
		case "file":
			if rs.File, ok = p.str(v, path); ok && !strings.HasPrefix(rs.File, "/") {
				p.errorf(v.origin, "%s: %q is not an absolute path", path, rs.File)
				ok = false
			}
		case "data":
			if v.kind != kNull {
				data = v
			}
		case "encoding":
			if v.kind != kNull {
				enc = v
			}
		case "command":
			rs.Command, ok = p.argv(v, path)
		case "command_required":
			rs.CommandRequired, ok = p.boolean(v, path)
		default:
			p.warnf(k.origin, "unknown random_seed key %q", k.value)
		}
		if !ok {
			return
		}
	}
	encoding := ""
	if enc != nil {
		if encoding, ok = p.str(enc, "random_seed.encoding"); !ok {
			return
		}
	}
	if data != nil {
		// !!binary is how gzip data is given: its bytes, as cloud-init
		// receives them from YAML.
		s := data.value
		if data.kind != kBinary {
			if s, ok = p.str(data, "random_seed.data"); !ok {
				return
			}
		}
		b, err := decodeSeed(s, encoding)
		if err != nil {
			p.errorf(data.origin, "random_seed.data: %v", err)
			return
		}
		rs.Data = b
	}
	p.cfg.RandomSeed = rs
}

// decodeSeed is cloud-init's decoding of random_seed.data: an empty
// string is no data whatever the encoding.
func decodeSeed(s, encoding string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	switch strings.ToLower(encoding) {
	case "", "raw":
		return []byte(s), nil
	case "base64", "b64":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("not base64: %w", err)
		}
		return b, nil
	case "gzip", "gz":
		zr, err := gzip.NewReader(bytes.NewReader([]byte(s)))
		if err != nil {
			return nil, fmt.Errorf("not gzip data: %w", err)
		}
		b, err := io.ReadAll(io.LimitReader(zr, maxSeed+1))
		if err != nil {
			return nil, fmt.Errorf("not gzip data: %w", err)
		}
		if len(b) > maxSeed {
			return nil, fmt.Errorf("decompresses to more than %d bytes", maxSeed)
		}
		return b, nil
	}
	return nil, fmt.Errorf("unknown encoding %q (raw, base64, b64, gzip or gz)", encoding)
}

// maxSeed bounds what gzip data may expand to: a seed is a few KiB.
const maxSeed = 1 << 20

// argv reads a command given as a list of strings.
func (p *parser) argv(n *node, path string) ([]string, bool) {
	switch n.kind {
	case kNull:
		return nil, true
	case kSeq:
		out := make([]string, 0, len(n.items))
		for i, it := range n.items {
			s, ok := p.str(it, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	p.typeErr(n, path, "list of strings")
	return nil, false
}

func randomSeedSchema() js {
	return nullable(object(map[string]js{
		"file":             withDesc(ref("string"), "Where data is appended (default /dev/urandom: the kernel's own seeding, left alone by provision)."),
		"data":             withDesc(nullable(ref("string")), "Seed data, decoded per encoding."),
		"encoding":         withDesc(js{"enum": []any{"raw", "base64", "b64", "gzip", "gz"}}, "How data is encoded (default raw)."),
		"command":          withDesc(nullable(arrayOf(ref("string"))), "A command run in the target afterwards, with RANDOM_SEED_FILE set to file."),
		"command_required": withDesc(ref("boolean"), "A missing command is an error (default false)."),
	}))
}
