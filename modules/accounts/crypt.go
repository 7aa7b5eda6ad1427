package accounts

import (
	"crypto/rand"
	"fmt"

	"github.com/GehirnInc/crypt"
	// Registers the $6$ scheme with crypt.
	_ "github.com/GehirnInc/crypt/sha512_crypt"
)

// HashPassword hashes a plain-text password with SHA-512-crypt ("$6$", 16
// character salt, default 5000 rounds), what chpasswd writes with login.defs
// ENCRYPT_METHOD SHA512.
func HashPassword(plain string) (string, error) {
	h, err := crypt.SHA512.New().Generate([]byte(plain), nil)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// VerifyPassword reports whether hash is plain's hash. Schemes the library
// does not know ($y$ yescrypt, $2b$ bcrypt) report false: the caller then
// rewrites the hash, which is correct if not minimal.
func VerifyPassword(hash, plain string) bool {
	// NewFromHash panics on schemes it does not know.
	if !crypt.IsHashSupported(hash) {
		return false
	}
	return crypt.NewFromHash(hash).Verify(hash, []byte(plain)) == nil
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
