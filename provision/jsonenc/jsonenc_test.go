package jsonenc

import (
	"bytes"
	"encoding/json"
	"testing"
)

func checkString(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendString(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"quoted" \back\`, "<script>&amp;</script>", "\x00\x01\x1f\x7f",
		"\b\f\n\r\t", "é 日本 🙂", "\u2028\u2029", "bad \xff\xfe", "cut \xe2\x82", "\xed\xa0\x80 surrogate",
	} {
		checkString(t, s)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("hello <world> \u2028 \xff")
	f.Fuzz(checkString)
}
