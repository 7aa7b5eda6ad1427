package network

import (
	"crypto/sha1"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// File is one rendered configuration file.
type File struct {
	Path   string
	Data   []byte
	Mode   fs.FileMode
	Detail string
}

// ini is an ordered INI-style file: NetworkManager keyfiles and systemd
// unit-style files share the syntax; networkd repeats sections ([Route]).
type ini struct{ sections []*section }

type section struct {
	name string
	kv   [][2]string
}

// sec returns the last section with this name, creating it when missing.
func (f *ini) sec(name string) *section {
	for n := len(f.sections) - 1; n >= 0; n-- {
		if f.sections[n].name == name {
			return f.sections[n]
		}
	}
	return f.add(name)
}

// add always starts a new section.
func (f *ini) add(name string) *section {
	s := &section{name: name}
	f.sections = append(f.sections, s)
	return s
}

func (s *section) set(k, v string) { s.kv = append(s.kv, [2]string{k, v}) }

func (s *section) setInt(k string, v *int) {
	if v != nil {
		s.set(k, strconv.Itoa(*v))
	}
}

func (f *ini) bytes() []byte {
	var b strings.Builder
	first := true
	for _, s := range f.sections {
		if len(s.kv) == 0 {
			continue
		}
		if !first {
			b.WriteString("\n")
		}
		first = false
		fmt.Fprintf(&b, "[%s]\n", s.name)
		for _, kv := range s.kv {
			fmt.Fprintf(&b, "%s=%s\n", kv[0], kv[1])
		}
	}
	return []byte(b.String())
}

// uuidNamespace scopes the name-based UUIDs of our NetworkManager profiles,
// so the same config always gives the same UUIDs (re-runs replace, never
// duplicate) and no other tool's profiles collide with ours.
var uuidNamespace = [16]byte{0x5b, 0x1f, 0x4e, 0x2a, 0x8c, 0x33, 0x4d, 0x07, 0x9a, 0x61, 0x0e, 0x72, 0xc4, 0x15, 0xd9, 0x38}

// uuid5 is an RFC 9562 version 5 UUID of name in uuidNamespace.
func uuid5(name string) string {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// linkFile renders the udev .link file that renames the device with a
// permanent MAC (cloud-init v1 "mac_address" + "name", netplan "set-name").
// PermanentMACAddress, unlike MACAddress, does not also match the bonds and
// VLANs that inherit the address.
func linkFile(i *Interface) File {
	var f ini
	f.sec("Match").set("PermanentMACAddress", strings.ToLower(i.MatchMAC))
	f.sec("Link").set("Name", i.Name)
	return File{
		Path:   "/etc/systemd/network/10-cloud-init-" + i.ID + ".link",
		Data:   f.bytes(),
		Mode:   0o644,
		Detail: "rename the device with MAC " + i.MatchMAC + " to " + i.Name,
	}
}

func joinAddrs[T fmt.Stringer](l []T, sep string, trailing bool) string {
	var parts []string
	for _, a := range l {
		parts = append(parts, a.String())
	}
	s := strings.Join(parts, sep)
	if trailing && s != "" {
		s += sep
	}
	return s
}
