#!/bin/bash
# dracut sources this file and sets moddir, initdir and systemdsystemunitdir.
# shellcheck disable=SC2154
# dracut module for provision, the first-boot provisioning agent: installs the
# static binary, the wrapper and provision.service, which runs between
# sysroot.mount and initrd-parse-etc.service.

# Include the module whenever the binary is installed.
check() {
	require_binaries /usr/bin/provision || return 1
	return 0
}

depends() {
	echo systemd
	return 0
}

# Seeds and the metadata service need these even in a host-only initrd: the
# USB stick or ISO is not attached when the image is built. overlay: an
# overlay /etc (Leap Micro 5.x, 6.0-6.1) is mounted for the new snapshot
# while the run writes into it.
installkernel() {
	hostonly='' instmods vfat isofs nls_cp437 nls_iso8859-1 nls_ascii nls_utf8 \
		btrfs overlay qemu_fw_cfg virtio_net
}

install() {
	inst_binary /usr/bin/provision
	inst_script "${moddir}/provision-initrd.sh" /usr/lib/provision/provision-initrd
	inst_simple "${moddir}/provision.service" "${systemdsystemunitdir}/provision.service"
	inst_multiple awk grep mount umount sed tr paste
	# With Combustion's module in the same initrd, its units skip a medium
	# provision already handled (the marker provision-initrd leaves).
	for unit in combustion.service combustion-prepare.service; do
		inst_simple "${moddir}/combustion-skip.conf" \
			"${systemdsystemunitdir}/${unit}.d/50-provision-skip.conf"
	done
	# Optional: lets the wrapper skip a remount that changes nothing.
	inst_multiple -o btrfs
	mkdir -p "${initdir}${systemdsystemunitdir}/initrd.target.requires"
	ln_r "${systemdsystemunitdir}/provision.service" \
		"${systemdsystemunitdir}/initrd.target.requires/provision.service"
}
