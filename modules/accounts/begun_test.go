package accounts

import (
	"errors"
	"strings"
	"testing"
)

func pendingHashes(plain string) int {
	begun.Lock()
	defer begun.Unlock()
	return len(begun.byPlain[plain])
}

func TestBeginHashIsTakenOnceWithItsMethod(t *testing.T) {
	sha512 := HashMethod{Name: "SHA512", From: "login.defs"}
	const pw = "begun-hash-test-1"
	BeginHash(pw, func() (HashMethod, error) { return sha512, nil })
	BeginHash(pw, func() (HashMethod, error) {
		t.Error("a second hash begun for a password already begun")
		return sha512, nil
	})
	if n := pendingHashes(pw); n != 1 {
		t.Fatalf("%d hashes pending, want 1", n)
	}
	// Asked with the same method, read from elsewhere: the begun one.
	h, err := HashPassword(HashMethod{Name: "SHA512", From: "pam"}, pw)
	if err != nil || !strings.HasPrefix(h, "$6$") || !VerifyPassword(h, pw) {
		t.Fatalf("HashPassword = %q, %v", h, err)
	}
	if n := pendingHashes(pw); n != 0 {
		t.Fatalf("%d hashes pending after it was taken, want 0", n)
	}
	// Taken once: the next call hashes anew, with another salt.
	h2, err := HashPassword(sha512, pw)
	if err != nil || h2 == h || !VerifyPassword(h2, pw) {
		t.Fatalf("second HashPassword = %q, %v (first %q)", h2, err, h)
	}
}

func TestBeginHashOfAnotherMethodIsNotUsed(t *testing.T) {
	const pw = "begun-hash-test-2"
	BeginHash(pw, func() (HashMethod, error) { return HashMethod{Name: "SHA512"}, nil })
	h, err := HashPassword(HashMethod{Name: "SHA256"}, pw)
	if err != nil || !strings.HasPrefix(h, "$5$") || !VerifyPassword(h, pw) {
		t.Fatalf("HashPassword(SHA256) = %q, %v: the SHA-512 hash begun must not be used", h, err)
	}
	BeginHash(pw, func() (HashMethod, error) { return HashMethod{Name: "SHA512", Rounds: 5000}, nil })
	h, err = HashPassword(HashMethod{Name: "SHA512", Rounds: 6000}, pw)
	if err != nil || !strings.HasPrefix(h, "$6$rounds=6000$") {
		t.Fatalf("HashPassword(6000 rounds) = %q, %v: the 5000-round hash begun must not be used", h, err)
	}
	// A method that could not be read: hashed when asked.
	BeginHash(pw, func() (HashMethod, error) { return HashMethod{}, errors.New("no login.defs") })
	h, err = HashPassword(HashMethod{Name: "SHA512"}, pw)
	if err != nil || !VerifyPassword(h, pw) {
		t.Fatalf("HashPassword after a failed begin = %q, %v", h, err)
	}
}
