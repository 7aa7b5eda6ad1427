package cloudinit

import (
	"strings"

	"github.com/provision-dev/provision/provision/config"
	gossh "golang.org/x/crypto/ssh"
)

// defaultGenKeyTypes is what cloud-init generates when ssh_genkeytypes is
// not given (since 23.1). 22.4 also named dsa: on Debian 12, whose
// OpenSSH 9.2 still makes DSA keys, it gets one; provision follows 23.1
// and later, and OpenSSH 9.8 and later, which make none.
var defaultGenKeyTypes = []string{"rsa", "ecdsa", "ed25519"}

// hostKeyTypes are the key types ssh_keys entries may name (cc_ssh's
// GENERATE_KEY_NAMES); other entries are skipped by cloud-init.
var hostKeyTypes = []string{"rsa", "dsa", "ecdsa", "ed25519"}

// generatable are the ssh_genkeytypes provision makes itself. dsa (removed
// from OpenSSH 9.8) and the -sk types (they need a hardware token at
// generation time) fail in ssh-keygen under cloud-init too: it logs and
// goes on, so they are a warning here, not an error.
var generatable = map[string]bool{"rsa": true, "ecdsa": true, "ed25519": true}

// sshHostKeys reads ssh_deletekeys, ssh_genkeytypes and ssh_keys. cc_ssh
// runs for every cloud-init instance, so the defaults (delete the image's
// keys, generate rsa, ecdsa and ed25519) apply even when none is given.
func (p *parser) sshHostKeys(doc config.Origin, del, gen, keys *node) {
	hk := &config.SSHHostKeys{Origin: doc, Delete: true, GenTypes: defaultGenKeyTypes, GenOrigin: doc}
	if del != nil {
		b, ok := p.boolean(del, "ssh_deletekeys")
		if !ok {
			return
		}
		hk.Delete, hk.Origin = b, del.origin
	}
	if gen != nil {
		types, ok := p.strOrList(gen, "ssh_genkeytypes")
		if !ok {
			return
		}
		hk.GenTypes, hk.GenOrigin = nil, gen.origin
		for _, t := range types {
			if !generatable[t] {
				p.warnf(gen.origin, "ssh_genkeytypes: %q cannot be generated on first boot (rsa, ecdsa and ed25519 can); skipped, as ssh-keygen fails for it under cloud-init", t)
				continue
			}
			hk.GenTypes = append(hk.GenTypes, t)
		}
	}
	if keys != nil && keys.kind != kNull {
		if keys.kind != kMap {
			p.typeErr(keys, "ssh_keys", "mapping")
			return
		}
		hk.HasSupplied = true
		for i, k := range keys.keys {
			f, ok := p.hostKeyFile(k, keys.vals[i])
			if ok {
				hk.Supplied = append(hk.Supplied, f)
			}
		}
	}
	p.cfg.SSHHostKeys = hk
}

// hostKeyFile reads one ssh_keys entry: <type>_private, <type>_public or
// <type>_certificate. A key that does not parse is written anyway, as
// cloud-init writes it, but draws a warning: sshd will skip it.
func (p *parser) hostKeyFile(k, v *node) (config.HostKeyFile, bool) {
	path := "ssh_keys." + k.value
	typ, part, _ := strings.Cut(k.value, "_")
	known := false
	for _, t := range hostKeyTypes {
		known = known || t == typ
	}
	if !known || (part != "private" && part != "public" && part != "certificate") {
		p.warnf(k.origin, "%s: not a host key entry (<rsa|dsa|ecdsa|ed25519>_<private|public|certificate>); ignored", path)
		return config.HostKeyFile{}, false
	}
	s, ok := p.str(v, path)
	if !ok {
		return config.HostKeyFile{}, false
	}
	if msg := checkHostKey(part, s); msg != "" {
		p.warnf(v.origin, "%s: %s; written as given, sshd will not use it", path, msg)
	}
	return config.HostKeyFile{Origin: v.origin, Type: typ, Part: part, Data: s}, true
}

// checkHostKey says what is wrong with a supplied key, or "".
func checkHostKey(part, data string) string {
	if part == "private" {
		if _, err := gossh.ParseRawPrivateKey([]byte(data)); err != nil {
			return "not an unencrypted private key: " + err.Error()
		}
		return ""
	}
	if _, _, _, _, err := gossh.ParseAuthorizedKey([]byte(data)); err != nil {
		return "not an OpenSSH public key or certificate: " + err.Error()
	}
	return ""
}

// hostKeysSchema is ssh_keys: a mapping of <type>_<part> to key text.
func hostKeysSchema() js {
	props := map[string]js{}
	for _, t := range hostKeyTypes {
		for _, part := range []string{"private", "public", "certificate"} {
			props[t+"_"+part] = ref("string")
		}
	}
	return nullable(object(props))
}
