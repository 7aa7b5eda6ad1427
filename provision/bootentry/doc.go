// Package bootentry keeps the Boot Loader Specification (Type #1) entries on
// the ESP in step with the btrfs snapshots of a systemd-boot (or grub2-bls)
// target managed by sdbootutil: it writes the entries of a new snapshot and
// makes one of them the default, as `sdbootutil add-all-kernels N` followed by
// `sdbootutil set-default-snapshot N` would, since on those targets the
// btrfs default subvolume does not decide what boots next.
package bootentry
