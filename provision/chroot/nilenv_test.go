package chroot

import "testing"

// TestNilEnvClose: a nil *Env (what a failed Setup returns, possibly held
// in an interface) closes and discards as nothing, never panics.
func TestNilEnvClose(t *testing.T) {
	var e *Env
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Discard(); err != nil {
		t.Fatal(err)
	}
}
