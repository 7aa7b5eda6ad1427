package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"math/big"
	"strconv"
)

// Yescrypt is not implemented: no pure-Go yescrypt module is served by the
// Go module proxy this project builds from (github.com/openwall/yescrypt-go
// is refused there, and none other is listed), and writing our own
// memory-hard KDF without a maintained reference to test against is worse
// than a well-known one. A target whose tools use yescrypt (Debian 12,
// openSUSE Tumbleweed and MicroOS) therefore gets SHA-512-crypt, which its
// libxcrypt verifies, and the plan says so (HashMethod.Fallback).

// cryptAlphabet is crypt(3)'s base-64 alphabet, used for salts.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Native reports whether the method is hashed as the target would: the SHA
// methods, the ones chpasswd and pam_unix write by default everywhere but
// on yescrypt systems.
func (m HashMethod) Native() bool {
	return m.Name == "SHA512" || m.Name == "SHA256"
}

// Fallback is "" when the method is native, else the warning for the plan:
// which method the target's tools use and what is written instead.
func (m HashMethod) Fallback() string {
	if m.Native() {
		return ""
	}
	return fmt.Sprintf("warning: the target hashes with %s (%s), not available here; SHA-512 written instead", m.Name, m.From)
}

// effective is the method actually used: m itself, or SHA-512 at the
// default cost when m is not native.
func (m HashMethod) effective() HashMethod {
	if m.Native() {
		return m
	}
	return HashMethod{Name: "SHA512", From: m.From}
}

// HashPassword hashes a plain-text password with the target's method m,
// what chpasswd writes there: $6$ or $5$ with a 16 character salt and the
// login.defs / pam_unix rounds ("rounds=" only when not the default 5000).
// A method without an implementation here gets SHA-512 (see Fallback).
//
// A hash of plain begun with the same method (BeginHash) is taken instead
// of hashing again.
func HashPassword(m HashMethod, plain string) (string, error) {
	m = m.effective()
	if h, ok := takeBegun(m, plain); ok {
		return h, nil
	}
	return hashNow(m, plain)
}

// hashNow hashes plain with m, already effective, and a fresh salt.
func hashNow(m HashMethod, plain string) (string, error) {
	rounds, err := m.pickRounds()
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt, err := randomSalt(16)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return hashWithSalt(m.Name, plain, settingString(m.Name, rounds, salt))
}

// pickRounds is shadow-utils' choice: a random count in [Rounds, MaxRounds]
// when both limits are set, else Rounds (0: the scheme's default).
func (m HashMethod) pickRounds() (int, error) {
	if m.MaxRounds <= m.Rounds {
		return m.Rounds, nil
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(m.MaxRounds-m.Rounds+1)))
	if err != nil {
		return 0, err
	}
	return m.Rounds + int(n.Int64()), nil
}

// settingString is the hash prefix crypt(3) takes as its setting: "$6$salt"
// or "$6$rounds=N$salt".
func settingString(method string, rounds int, salt string) string {
	prefix := "$6$"
	if method == "SHA256" {
		prefix = "$5$"
	}
	if rounds != 0 && rounds != 5000 {
		prefix += "rounds=" + strconv.Itoa(rounds) + "$"
	}
	return prefix + salt
}

// hashWithSalt hashes plain with a given setting string; split out so tests
// can reproduce a hash the system's chpasswd made.
func hashWithSalt(method, plain, setting string) (string, error) {
	h, err := shaCrypt([]byte(plain), setting)
	if err != nil {
		return "", fmt.Errorf("hash password: %s: %w", method, err)
	}
	return h, nil
}

func randomSalt(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 64 symbols: the low six bits are uniform.
		b[i] = cryptAlphabet[b[i]&63]
	}
	return string(b), nil
}

// VerifyPassword reports whether hash is plain's hash. Schemes other than
// SHA-crypt ($y$ yescrypt, $2b$ bcrypt) report false: the caller then
// rewrites the hash, which is correct if not minimal.
func VerifyPassword(hash, plain string) bool {
	got, err := shaCrypt([]byte(plain), hash)
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// RandomPassword makes a password like cloud-init's chpasswd RANDOM: 20
// characters from letters and digits.
func RandomPassword() (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		// 256 % 62 skews a little; irrelevant for a 119-bit password.
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}
