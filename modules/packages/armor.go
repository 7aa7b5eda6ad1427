package packages

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// MaxKeySize bounds an armored key; real keyrings are a few KiB.
const MaxKeySize = 1 << 20

// Dearmor turns ASCII-armored OpenPGP data (RFC 4880 §6.2) into the binary
// packets — what `gpg --dearmor` writes and what cloud-init stores as an
// apt keyring. Several armored blocks are concatenated. We decode it
// ourselves because the initrd has no gpg.
func Dearmor(text []byte) ([]byte, error) {
	if len(text) > MaxKeySize {
		return nil, fmt.Errorf("key larger than %d bytes", MaxKeySize)
	}
	lines := strings.Split(strings.ReplaceAll(string(text), "\r\n", "\n"), "\n")
	var out []byte
	blocks := 0
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "-----BEGIN PGP ") || !strings.HasSuffix(l, "-----") {
			continue
		}
		kind := strings.TrimSuffix(strings.TrimPrefix(l, "-----BEGIN "), "-----")
		i++
		// Armor headers ("Version: ...") end at the first blank line; a
		// block without headers may omit it.
		j := i
		for j < len(lines) && strings.TrimSpace(lines[j]) != "" && strings.Contains(lines[j], ": ") {
			j++
		}
		if j < len(lines) && strings.TrimSpace(lines[j]) == "" {
			j++
		}
		var body strings.Builder
		crc := ""
		end := false
		for ; j < len(lines); j++ {
			t := strings.TrimSpace(lines[j])
			if t == "-----END "+kind+"-----" {
				end = true
				break
			}
			if strings.HasPrefix(t, "-----") {
				return nil, fmt.Errorf("armor: unexpected %q in %s", t, kind)
			}
			if strings.HasPrefix(t, "=") && len(t) == 5 {
				crc = t[1:]
				continue
			}
			body.WriteString(t)
		}
		if !end {
			return nil, fmt.Errorf("armor: %s has no END line", kind)
		}
		i = j
		data, err := base64.StdEncoding.DecodeString(body.String())
		if err != nil {
			return nil, fmt.Errorf("armor: %s: %w", kind, err)
		}
		if len(data) == 0 {
			return nil, fmt.Errorf("armor: %s is empty", kind)
		}
		if crc != "" {
			want, err := base64.StdEncoding.DecodeString(crc)
			if err != nil || len(want) != 3 {
				return nil, fmt.Errorf("armor: %s: bad checksum line", kind)
			}
			got := crc24(data)
			if !bytes.Equal(want, []byte{byte(got >> 16), byte(got >> 8), byte(got)}) {
				return nil, fmt.Errorf("armor: %s: checksum mismatch", kind)
			}
		}
		// Every OpenPGP packet header has bit 7 set (RFC 4880 §4.2).
		if data[0]&0x80 == 0 {
			return nil, fmt.Errorf("armor: %s does not hold OpenPGP packets", kind)
		}
		out = append(out, data...)
		blocks++
	}
	if blocks == 0 {
		return nil, errors.New("not an ASCII-armored OpenPGP key (no -----BEGIN PGP ...----- line)")
	}
	return out, nil
}

// crc24 is RFC 4880 §6.1's checksum.
func crc24(data []byte) uint32 {
	crc := uint32(0xB704CE)
	for _, b := range data {
		crc ^= uint32(b) << 16
		for i := 0; i < 8; i++ {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1864CFB
			}
		}
	}
	return crc & 0xFFFFFF
}
