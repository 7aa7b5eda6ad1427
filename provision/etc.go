package provision

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/etcmodel"
	"github.com/provision-dev/provision/provision/snapshot"
)

// readEtcModel reads the /etc model from the fstab of the tree at root
// (the snapshot being modified, or the new one, which starts as its copy).
func readEtcModel(root string) (etcmodel.Model, error) {
	r, err := rootfs.New(root)
	if err != nil {
		return etcmodel.Model{}, err
	}
	data, err := r.ReadFile("/etc/fstab")
	if errors.Is(err, os.ErrNotExist) {
		return etcmodel.Model{Kind: etcmodel.Directory}, nil
	}
	if err != nil {
		return etcmodel.Model{}, fmt.Errorf("reading the target's /etc/fstab: %w", err)
	}
	return etcmodel.Detect("/etc/fstab", data)
}

// carryEtc gives the new snapshot of txn the /etc model of the old one. A
// nested /etc subvolume was already carried over by the transaction; an
// overlay /etc gets snapshot N's own upper layer in N's fstab (the layer
// itself is made when the chroot mounts /etc as that line says).
func carryEtc(txn Txn, console io.Writer) (carriedEtc, error) {
	m, err := readEtcModel(txn.Root())
	if err != nil {
		return carriedEtc{Model: m}, err
	}
	c, err := carryOverlay(txn, m, console)
	if err == nil {
		fmt.Fprintf(console, "[ OK ] target: %s\n", c.Describe())
	}
	return c, err
}

// carriedEtc is the new snapshot's /etc model and, for an overlay, the
// fstab naming its layers.
type carriedEtc struct {
	etcmodel.Model
	fstab []byte
}

func carryOverlay(txn Txn, m etcmodel.Model, console io.Writer) (carriedEtc, error) {
	if m.Kind != etcmodel.Overlay {
		return carriedEtc{Model: m}, nil
	}
	num, ok := txn.(snapshot.Numbered)
	info, isSnapper := snapshot.SnapperInfo{}, false
	if ok {
		info, isSnapper = num.Snapper()
	}
	if !isSnapper {
		return carriedEtc{}, errors.New("/etc is an overlay whose layers are numbered by snapper snapshot, but the root is not a snapper snapshot (@/.snapshots/N/snapshot): refusing before writing anything")
	}
	next, err := m.NextOverlay(info.Num)
	if err != nil {
		return carriedEtc{}, err
	}
	r, err := rootfs.New(txn.Root())
	if err != nil {
		return carriedEtc{}, err
	}
	data, err := r.ReadFile("/etc/fstab")
	if err != nil {
		return carriedEtc{}, err
	}
	updated, err := etcmodel.Rewrite(data, m.Line, next.FstabLine())
	if err != nil {
		return carriedEtc{}, err
	}
	// The snapshot's own /etc/fstab is what the initrd reads before it
	// mounts the overlay; the chroot's copy into the upper layer follows.
	if err := r.WriteFile("/etc/fstab", updated, 0o644, rootfs.RootOwner); err != nil {
		return carriedEtc{}, fmt.Errorf("writing the new snapshot's fstab: %w", err)
	}
	fmt.Fprintf(console, "[ OK ] target: /etc of snapshot %d: upper layer %s over %v\n", info.Num, next.Upper, next.Lower)
	return carriedEtc{Model: next, fstab: updated}, nil
}

// copyFstabToUpper writes the new snapshot's fstab through its mounted
// overlay /etc, so the upper layer holds it too, as transactional-update
// keeps it: a copy in an older upper layer must never shadow it.
func copyFstabToUpper(root string, etc carriedEtc) error {
	if etc.Kind != etcmodel.Overlay || etc.fstab == nil {
		return nil
	}
	r, err := rootfs.New(root)
	if err != nil {
		return err
	}
	return r.WriteFile("/etc/fstab", etc.fstab, 0o644, rootfs.RootOwner)
}
