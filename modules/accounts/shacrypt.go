package accounts

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt ($5$ and $6$), as glibc's and libxcrypt's crypt(3) compute it
// (Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512"). Written here
// rather than taken from a library so that its 5000 or more rounds reuse
// one digest and one buffer: the library this replaces allocated on every
// round (5014 allocations, 320 KB a hash). Tests hold it to the
// specification's vectors and to the system's own crypt.

const (
	shaCryptRoundsDefault = 5000
	shaCryptRoundsMin     = 1000
	shaCryptRoundsMax     = 999999999
	shaCryptSaltMax       = 16
)

var errBadSetting = errors.New("not a $5$ or $6$ setting")

// shaCrypt hashes key with setting: "$5$" or "$6$", an optional
// "rounds=N$" (clamped to [1000, 999999999], and then written out even
// when it is the default), and a salt of at most 16 characters ending at
// the next "$" or the end. A whole hash is a valid setting: its own salt
// and rounds are used, so a hash verifies by comparing shaCrypt(key, hash).
func shaCrypt(key []byte, setting string) (string, error) {
	var newHash func() hash.Hash
	var order [][3]int
	var tail []int
	var id string
	switch {
	case strings.HasPrefix(setting, "$6$"):
		newHash, order, tail, id = sha512.New, sha512Order, []int{63}, "$6$"
	case strings.HasPrefix(setting, "$5$"):
		newHash, order, tail, id = sha256.New, sha256Order, []int{31, 30}, "$5$"
	default:
		return "", errBadSetting
	}
	rest := setting[len(id):]
	rounds, custom := shaCryptRoundsDefault, false
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		digits, after, found := strings.Cut(r, "$")
		n, err := strconv.ParseUint(digits, 10, 64)
		if !found || err != nil {
			return "", errBadSetting
		}
		rounds, custom, rest = int(min(max(n, shaCryptRoundsMin), shaCryptRoundsMax)), true, after
	}
	salt, _, _ := strings.Cut(rest, "$")
	if len(salt) > shaCryptSaltMax {
		salt = salt[:shaCryptSaltMax]
	}
	final := shaCryptSum(newHash, key, []byte(salt), rounds)

	out := make([]byte, 0, len(id)+len("rounds=999999999$")+len(salt)+1+86)
	out = append(out, id...)
	if custom {
		out = append(out, "rounds="...)
		out = strconv.AppendInt(out, int64(rounds), 10)
		out = append(out, '$')
	}
	out = append(out, salt...)
	out = append(out, '$')
	for _, t := range order {
		out = appendCrypt64(out, uint(final[t[0]])<<16|uint(final[t[1]])<<8|uint(final[t[2]]), 4)
	}
	if len(tail) == 1 { // SHA-512: the last byte, two characters
		out = appendCrypt64(out, uint(final[tail[0]]), 2)
	} else { // SHA-256: the last two bytes, three characters
		out = appendCrypt64(out, uint(final[tail[0]])<<8|uint(final[tail[1]]), 3)
	}
	return string(out), nil
}

// shaCryptSum is the algorithm's digest C after the rounds.
func shaCryptSum(newHash func() hash.Hash, key, salt []byte, rounds int) []byte {
	h := newHash()
	size := h.Size()

	// B = H(key salt key)
	h.Write(key)
	h.Write(salt)
	h.Write(key)
	b := h.Sum(make([]byte, 0, size))

	// A = H(key salt, B repeated over len(key) bytes, then for each bit
	// of len(key) from the lowest: B for a one, key for a zero).
	h.Reset()
	h.Write(key)
	h.Write(salt)
	for n := len(key); n > 0; n -= size {
		h.Write(b[:min(n, size)])
	}
	for n := len(key); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(key)
		}
	}
	c := h.Sum(make([]byte, 0, size))

	// P: H(key repeated len(key) times), stretched to len(key) bytes.
	h.Reset()
	for range key {
		h.Write(key)
	}
	p := stretch(h.Sum(make([]byte, 0, size)), len(key))

	// S: H(salt repeated 16+A[0] times), stretched to len(salt) bytes.
	h.Reset()
	for i := 0; i < 16+int(c[0]); i++ {
		h.Write(salt)
	}
	s := stretch(h.Sum(make([]byte, 0, size)), len(salt))

	for i := 0; i < rounds; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}
	return c
}

// stretch repeats d to n bytes.
func stretch(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}

// appendCrypt64 writes the low 6·n bits of w in crypt's base-64, lowest
// six bits first.
func appendCrypt64(out []byte, w uint, n int) []byte {
	for ; n > 0; n-- {
		out = append(out, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return out
}

// The digest's bytes in the order the encoding takes them, three at a
// time: each triple is {k, k+t, k+2t} (t = 21 for SHA-512, 10 for
// SHA-256), rotated by k mod 3, as the specification lists them.
var (
	sha512Order = cryptOrder(21, false)
	sha256Order = cryptOrder(10, true)
)

func cryptOrder(t int, sha256 bool) [][3]int {
	out := make([][3]int, 0, t)
	for k := 0; k < t; k++ {
		a, b, c := k, k+t, k+2*t
		switch {
		case k%3 == 0:
			out = append(out, [3]int{a, b, c})
		case k%3 == 1 && !sha256, k%3 == 2 && sha256:
			out = append(out, [3]int{b, c, a})
		default:
			out = append(out, [3]int{c, a, b})
		}
	}
	return out
}
