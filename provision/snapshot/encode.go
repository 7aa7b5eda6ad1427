package snapshot

import (
	"strconv"
	"time"

	"github.com/provision-dev/provision/provision/jsonenc"
)

// The transaction's records are written as json.Marshal writes them, byte
// for byte (a differential test and fuzz targets hold them to that), but
// without reflection: a run's first use of encoding/json costs a fresh
// process its encoders, on the path to the commit.

// appendDirTimes is json.Marshal(t).
func appendDirTimes(b []byte, t dirTimes) []byte {
	b = append(b, `{"Atime":`...)
	b = strconv.AppendInt(b, t.Atime, 10)
	b = append(b, `,"Mtime":`...)
	b = strconv.AppendInt(b, t.Mtime, 10)
	if t.Root != "" {
		b = append(b, `,"Root":`...)
		b = jsonenc.AppendString(b, t.Root)
	}
	return append(b, '}')
}

// appendBtrfsState is json.Marshal(st); Created must be a time
// encoding/json can write (years 0 to 9999), as time.Now is.
func appendBtrfsState(b []byte, st *btrfsState) []byte {
	b = append(b, `{"snapshot":`...)
	b = jsonenc.AppendString(b, st.Snapshot)
	if st.SnapperDir != "" {
		b = append(b, `,"snapper_dir":`...)
		b = jsonenc.AppendString(b, st.SnapperDir)
	}
	if st.Num != 0 {
		b = append(b, `,"num":`...)
		b = strconv.AppendUint(b, st.Num, 10)
	}
	b = append(b, `,"root":`...)
	b = jsonenc.AppendString(b, st.Root)
	b = append(b, `,"old_default":`...)
	b = strconv.AppendUint(b, st.OldDefault, 10)
	b = append(b, `,"created":"`...)
	b = st.Created.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	if st.Top != "" {
		b = append(b, `,"top":`...)
		b = jsonenc.AppendString(b, st.Top)
	}
	if len(st.Outside) > 0 {
		b = append(b, `,"outside":[`...)
		for i, o := range st.Outside {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"target":`...)
			b = jsonenc.AppendString(b, o.Target)
			b = append(b, `,"orig":`...)
			b = jsonenc.AppendString(b, o.Orig)
			b = append(b, `,"snap":`...)
			b = jsonenc.AppendString(b, o.Snap)
			b = append(b, `,"trash":`...)
			b = jsonenc.AppendString(b, o.Trash)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}
