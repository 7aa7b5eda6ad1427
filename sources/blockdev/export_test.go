package blockdev

// DirReads and BytesRead let the tests hold a direct medium to reading
// each directory once and its bytes about once.
func DirReads(m *Medium) int    { return m.dirReads }
func BytesRead(m *Medium) int64 { return m.st.read }

// OnRead calls fn before each file of m is read.
func OnRead(m *Medium, fn func()) { m.onRead = fn }
