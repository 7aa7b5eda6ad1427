package provision

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/provision-dev/provision/sources"
)

// instanceIDPath is where the last provisioned instance is recorded in the
// target, like cloud-init's /var/lib/cloud/data/instance-id.
const instanceIDPath = "/var/lib/provision/instance-id"

// disabledPath in the target switches the agent off.
const disabledPath = "/etc/provision/disabled"

// Boot is the first-boot predicate's input and verdict.
type Boot struct {
	MachineIDState string // "missing", "empty", "uninitialized", "set"
	ForcedBy       string // the cmdline word that forces a first boot
	DisabledBy     string // what disables the agent
	Recorded       string // instance-id recorded in the target
}

// firstBootWords force a run, as in Combustion and Ignition.
var firstBootWords = []string{"provision.firstboot", "combustion.firstboot", "ignition.firstboot"}

// ReadBoot inspects the target root and the kernel command line.
func ReadBoot(root string, cmdline []string) Boot {
	var b Boot
	data, err := os.ReadFile(filepath.Join(root, "etc/machine-id"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		b.MachineIDState = "missing"
	case err != nil:
		b.MachineIDState = "unreadable"
	case len(bytes.TrimSpace(data)) == 0:
		b.MachineIDState = "empty"
	case bytes.Contains(data, []byte("uninitialized")):
		b.MachineIDState = "uninitialized"
	default:
		b.MachineIDState = "set"
	}
	for _, w := range cmdline {
		for _, fw := range firstBootWords {
			if w == fw || w == fw+"=1" {
				b.ForcedBy = w
			}
		}
		if w == "provision=disabled" || w == "cloud-init=disabled" {
			b.DisabledBy = "kernel command line " + w
		}
	}
	if _, err := os.Lstat(filepath.Join(root, disabledPath)); err == nil {
		b.DisabledBy = disabledPath
	}
	if rec, err := os.ReadFile(filepath.Join(root, instanceIDPath)); err == nil {
		b.Recorded = strings.TrimSpace(string(rec))
	}
	return b
}

// FirstBoot reports whether the machine-id or the command line say this is
// a first boot.
func (b Boot) FirstBoot() bool {
	return b.ForcedBy != "" || b.MachineIDState != "set"
}

// InstanceID identifies what is being provisioned: the meta-data instance-id
// when a source gives one, else a digest of every document, so the same
// Combustion stick applied twice is recognised as the same instance.
func InstanceID(metaInstanceID string, docs []sources.Document) string {
	if metaInstanceID != "" {
		return metaInstanceID
	}
	if len(docs) == 0 {
		return ""
	}
	keys := make([]string, 0, len(docs))
	byKey := map[string][]byte{}
	for _, d := range docs {
		k := d.Origin.File + "\x00" + string(d.Kind)
		keys = append(keys, k)
		byKey[k] = d.Data
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		sum := sha256.Sum256(byKey[k])
		h.Write(sum[:])
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]
}
