// Package sources finds configuration on the machine and yields raw documents.
// A source never parses what it reads: it says what kind of document each
// byte string is and where it came from. Subpackages implement the sources;
// platform facts (DMI, hypervisor, cmdline) decide which are worth trying.
package sources

import (
	"context"
	"errors"

	"github.com/provision-dev/provision/provision/config"
)

// Kind names what a document is, so the engine can pick the parser.
type Kind string

const (
	// KindCombustion is one file of a Combustion config directory; Origin.File
	// is its path relative to that directory ("script", "ssh/key.pub").
	KindCombustion Kind = "combustion"
	// KindIgnition is an Ignition v3 JSON config.
	KindIgnition Kind = "ignition"
	// KindUserData is cloud-init user-data (any of its formats).
	KindUserData Kind = "user-data"
	// KindMetaData is NoCloud meta-data (YAML or JSON), or EC2 meta-data the
	// ec2 source assembled into the same shape.
	KindMetaData Kind = "meta-data"
	// KindVendorData and KindVendorData2 are cloud-init vendor-data.
	KindVendorData  Kind = "vendor-data"
	KindVendorData2 Kind = "vendor-data2"
	// KindVendorDataJSON is OpenStack's vendor_data.json/vendor_data2.json,
	// whose "cloud-init" key holds the vendor-data.
	KindVendorDataJSON  Kind = "vendor-data-json"
	KindVendorData2JSON Kind = "vendor-data2-json"
	// KindNetworkConfig is cloud-init network-config (v1 or v2).
	KindNetworkConfig Kind = "network-config"
	// KindOpenStackMetaData is ConfigDrive/OpenStack meta_data.json.
	KindOpenStackMetaData Kind = "openstack-meta-data"
	// KindOpenStackNetworkData is network_data.json.
	KindOpenStackNetworkData Kind = "openstack-network-data"
	// KindUnknown is content whose kind the engine decides by sniffing (URLs).
	KindUnknown Kind = "unknown"
)

// Document is one raw input with its origin (Source and File set).
type Document struct {
	Origin config.Origin
	Kind   Kind
	Data   []byte
}

// Presence is a source's cheap, local answer to "are you here?".
type Presence int

const (
	Absent       Presence = iota // nothing here: do not fetch
	Present                      // here, readable without network
	NeedsNetwork                 // here, but fetching needs the network up
	Maybe                        // a device may still appear; wait up to the device timeout
)

func (p Presence) String() string {
	switch p {
	case Present:
		return "present"
	case NeedsNetwork:
		return "needs network"
	case Maybe:
		return "maybe"
	}
	return "absent"
}

// Source yields documents.
type Source interface {
	Name() string
	Detect(f *Facts) Presence
	Fetch(ctx context.Context) ([]Document, error)
}

// ErrNotFound means the source looked and found nothing; it is not a failure.
var ErrNotFound = errors.New("no configuration found")

// Facts are the local facts sources are chosen by. All paths are read under
// Prefix so tests can run against fake trees.
type Facts struct {
	Prefix         string            // "" on a real system
	Cmdline        []string          // /proc/cmdline words (quotes honoured)
	DMI            map[string]string // /sys/class/dmi/id/<key>, trimmed
	HypervisorType string            // /sys/hypervisor/type
	HypervisorUUID string            // /sys/hypervisor/uuid
	FwCfg          bool              // /sys/firmware/qemu_fw_cfg exists
}
