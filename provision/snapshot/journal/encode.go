package journal

import (
	"encoding/base64"
	"slices"
	"strconv"

	"github.com/provision-dev/provision/provision/jsonenc"
)

// appendEntry writes e as json.Marshal does, byte for byte (a differential
// test and a fuzz target hold it to that), without reflection: a run's
// first record would otherwise pay for encoding/json building its encoder.
func appendEntry(b []byte, e *entry) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, int64(e.Seq), 10)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, e.Path)
	b = append(b, `,"kind":`...)
	b = jsonenc.AppendString(b, e.Kind)
	if e.Mode != 0 {
		b = append(b, `,"mode":`...)
		b = strconv.AppendUint(b, uint64(e.Mode), 10)
	}
	b = append(b, `,"uid":`...)
	b = strconv.AppendInt(b, int64(e.UID), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendInt(b, int64(e.GID), 10)
	if e.Atime != 0 {
		b = append(b, `,"atime":`...)
		b = strconv.AppendInt(b, e.Atime, 10)
	}
	if e.Mtime != 0 {
		b = append(b, `,"mtime":`...)
		b = strconv.AppendInt(b, e.Mtime, 10)
	}
	if e.Target != "" {
		b = append(b, `,"target":`...)
		b = jsonenc.AppendString(b, e.Target)
	}
	if len(e.Xattrs) > 0 {
		b = append(b, `,"xattrs":{`...)
		names := make([]string, 0, len(e.Xattrs))
		for n := range e.Xattrs {
			names = append(names, n)
		}
		slices.Sort(names)
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, n)
			b = append(b, ':')
			b = appendBytes(b, e.Xattrs[n])
		}
		b = append(b, '}')
	}
	if e.Inline {
		b = append(b, `,"inline":true`...)
	}
	if len(e.Data) > 0 {
		b = append(b, `,"data":`...)
		b = appendBytes(b, e.Data)
	}
	return append(b, '}')
}

// appendBytes is encoding/json's []byte: standard base64, null when nil.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}
