package accounts

import "testing"

// Every parser must give back its input byte for byte and never panic.
func fuzzRoundTrip(f *testing.F, kind Kind, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file := Parse(kind, data)
		if got := file.Bytes(); string(got) != string(data) {
			t.Fatalf("round trip: %q -> %q", data, got)
		}
		for _, l := range file.Entries() {
			file.Pad(l)
			_ = l.Int(2)
		}
	})
}

func FuzzParsePasswd(f *testing.F) {
	fuzzRoundTrip(f, PasswdKind, "root:x:0:0:root:/root:/bin/bash\n", "+::::::\n# c\n\nbad", "a:x: 1:+2::/:\r\n")
}

func FuzzParseGroup(f *testing.F) {
	fuzzRoundTrip(f, GroupKind, "wheel:x:10:a,b\n", "short:x:11", "-@ng\n")
}

func FuzzParseShadow(f *testing.F) {
	fuzzRoundTrip(f, ShadowKind, "a:!:19000:0:99999:7:::\n", "old:x:1:2:3\n", "x:y:-1::::::\n")
}

func FuzzParseGshadow(f *testing.F) {
	fuzzRoundTrip(f, GshadowKind, "g:!::a,b\n", "g:!:\n")
}

func FuzzParseSubID(f *testing.F) {
	fuzzRoundTrip(f, SubUIDKind, "a:100000:65536\n", "b:1:x\n")
}
