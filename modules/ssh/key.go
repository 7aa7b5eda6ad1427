package ssh

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// MinRSABits is the RSA size below which a key is accepted with a warning:
// OpenSSH (since 8.x) and NIST consider smaller moduli too weak, but
// refusing them outright would lock users out of machines they could log
// in to with cloud-init.
const MinRSABits = 2048

// KeyInfo describes one validated authorized_keys line.
type KeyInfo struct {
	Type        string // "ssh-ed25519", "ssh-rsa", ...
	Bits        int    // modulus size for RSA keys, 0 otherwise
	Fingerprint string // SHA256:... as ssh-keygen -l prints it
	Comment     string
	HasOptions  bool
	// Warning is non-empty for a key that is accepted but weak or obsolete.
	Warning string
	// id is the wire-format key (type + blob): two lines with the same id
	// authorize the same key, whatever their options and comments.
	id string
}

// CheckKeyLine validates one authorized_keys line (options and comment
// allowed) the way sshd would read it. The line must be exactly one key:
// blank lines, comments and embedded newlines are errors, so a config can
// never smuggle a second key past the check.
func CheckKeyLine(line string) (KeyInfo, error) {
	if strings.ContainsAny(line, "\r\n\x00") {
		return KeyInfo{}, errors.New("an authorized key must be a single line without NUL bytes")
	}
	trimmed := strings.TrimSpace(line)
	if trimmed == "" {
		return KeyInfo{}, errors.New("empty ssh key")
	}
	if trimmed[0] == '#' {
		return KeyInfo{}, errors.New("ssh key line is a comment")
	}
	pub, comment, options, rest, err := gossh.ParseAuthorizedKey([]byte(trimmed))
	if err != nil {
		return KeyInfo{}, fmt.Errorf("invalid ssh key %s: %w", abbreviate(trimmed), err)
	}
	if len(rest) != 0 {
		return KeyInfo{}, errors.New("trailing data after the ssh key")
	}
	// Text before the key type is an options field: one that parses to no
	// options at all ("," alone) is refused by sshd, so refuse it here.
	if first := strings.Fields(trimmed)[0]; first != pub.Type() && len(options) == 0 {
		return KeyInfo{}, fmt.Errorf("invalid ssh key %s: malformed options field %q", abbreviate(trimmed), first)
	}
	for _, o := range options {
		// sshd refuses an options field with an empty option ("," alone,
		// a leading or doubled comma) as bad options: the key would not work.
		if strings.TrimSpace(o) == "" {
			return KeyInfo{}, fmt.Errorf("invalid ssh key %s: empty option in the options field", abbreviate(trimmed))
		}
	}
	info := KeyInfo{
		Type:        pub.Type(),
		Fingerprint: gossh.FingerprintSHA256(pub),
		Comment:     comment,
		HasOptions:  len(options) > 0,
		id:          string(pub.Marshal()),
	}
	if ck, ok := pub.(gossh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok {
			info.Bits = rk.N.BitLen()
			if info.Bits < MinRSABits {
				info.Warning = fmt.Sprintf("RSA key %s has only %d bits (under %d)", info.Fingerprint, info.Bits, MinRSABits)
			}
		}
	}
	if info.Type == "ssh-dss" {
		// OpenSSH disabled DSA in 7.0 and removed it in 9.8: the key is
		// written, but sshd on the target will most likely ignore it.
		info.Warning = fmt.Sprintf("DSA key %s is refused by current OpenSSH", info.Fingerprint)
	}
	return info, nil
}

// abbreviate keeps error messages short and free of a whole key blob.
func abbreviate(s string) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}

// composeLine returns the line to write: the key as given (trimmed), with
// prefix (cloud-init's disable_root refusal options) prepended. When the key
// already has options the prefix joins them with a comma, so both the
// refusal and the user's own restrictions stay in force.
func composeLine(prefix, key string, keyHasOptions bool) string {
	key = strings.TrimSpace(key)
	prefix = strings.TrimSpace(prefix)
	switch {
	case prefix == "":
		return key
	case keyHasOptions:
		return prefix + "," + key
	default:
		return prefix + " " + key
	}
}

// existingKeyIDs returns the ids of the keys already present in an
// authorized_keys file. Lines that do not parse are ignored here (and kept
// byte for byte by the writer).
func existingKeyIDs(data []byte) map[string]bool {
	ids := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		info, err := CheckKeyLine(strings.TrimSuffix(line, "\r"))
		if err == nil {
			ids[info.id] = true
		}
	}
	return ids
}
