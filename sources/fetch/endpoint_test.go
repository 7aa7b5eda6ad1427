package fetch

import (
	"testing"

	"github.com/provision-dev/provision/sources"
)

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		base, origin string
		explicit, on bool
		want         sources.Presence
	}{
		{"", "ec2:http://169.254.169.254", false, false, sources.Absent},
		{"http://10.0.0.1:8080//", "ec2:http://10.0.0.1:8080", false, true, sources.NeedsNetwork},
		{"http://10.0.0.1/", "ec2:http://10.0.0.1", true, false, sources.NeedsNetwork},
	} {
		e := NewEndpoint("ec2", tc.base, "http://169.254.169.254")
		e.Explicit = tc.explicit
		if e.Client == nil {
			t.Fatalf("%q: no client", tc.base)
		}
		if got := e.Origin(); got != tc.origin {
			t.Errorf("%q: Origin() = %q, want %q", tc.base, got, tc.origin)
		}
		if got := e.Presence(tc.on); got != tc.want {
			t.Errorf("%q: Presence(%v) = %v, want %v", tc.base, tc.on, got, tc.want)
		}
	}
}
