#!/bin/sh
# provision-initrd: the provision.service job in a systemd initrd.
#
# 1. /sysroot was mounted by sysroot.mount, read-only when the cmdline says
#    "ro": make it writable for the run (the snapshot is created from it).
# 2. `provision run --root /sysroot` decides whether this is a first boot,
#    finds the sources, mounts the target's /var, /home... from its fstab,
#    applies the config in a new snapshot and makes it the default subvolume.
# 3. Mount /sysroot again on the (new) default subvolume, with whatever was
#    mounted below it, as Combustion does (rootflags that pin a subvolume
#    are moved to the new default by a sysroot.mount drop-in).
# 4. Restore "ro", and on failure do what provision.on_failure= says.
set -u

sysroot=/sysroot
provision=${PROVISION_BIN:-/usr/bin/provision}

# getarg KEY: the value of the last KEY=VALUE word on the kernel cmdline.
getarg() {
	val=""
	read -r cmdline < /proc/cmdline
	for word in $cmdline; do
		case "$word" in
		"$1="*) val=${word#"$1="} ;;
		esac
	done
	printf '%s' "$val"
}

log() {
	echo "provision-initrd: $*"
}

# mountfield N: field N (1 source, 3 type, 4 options) of /sysroot in /proc/mounts.
mountfield() {
	awk -v m="$sysroot" -v f="$1" '$2 == m { v = $f } END { print v }' /proc/mounts
}

# fail MESSAGE: follow provision.on_failure (emergency, continue, reboot).
fail() {
	policy=$(getarg provision.on_failure)
	echo "*** provision: FAILED: $*"
	case "$policy" in
	continue)
		echo "*** provision.on_failure=continue: booting the unchanged root; the next boot retries."
		return 0
		;;
	reboot)
		echo "*** provision.on_failure=reboot: rebooting."
		systemctl --no-block reboot
		exit 1
		;;
	*)
		echo "*** The boot is stopped (provision.on_failure=${policy:-emergency})."
		# A failed RequiredBy=initrd.target unit sends systemd to emergency.target.
		exit 1
		;;
	esac
}

# without_subvol OPTIONS: mount options minus subvol= and subvolid=.
without_subvol() {
	printf '%s' "$1" | tr , '\n' | grep -v -e '^subvol=' -e '^subvolid=' | paste -sd, -
}

# remount_default mounts /sysroot again so it shows the default subvolume,
# restoring the mounts below it in their order. When rootflags pin a
# subvolume (a systemd-boot entry), this boot continues into the new
# default all the same, and sysroot.mount is told so by a drop-in, as
# Combustion does: the next boot comes from the entry the run added.
remount_default() {
	[ "$(mountfield 3)" = btrfs ] || return 0
	flags=$(getarg rootflags)
	pinned=no
	case ",$flags," in
	*,subvol=* | *,subvolid=*) pinned=yes ;;
	esac
	dev=$(mountfield 1)
	want="" path=""
	if command -v btrfs > /dev/null 2>&1; then
		def=$(btrfs subvolume get-default "$sysroot" 2> /dev/null)
		want=$(echo "$def" | awk '{ print $2 }')
		path=$(echo "$def" | sed -n 's/^ID [0-9]* .* path //p')
		have=$(mountfield 4 | tr , '\n' | sed -n 's/^subvolid=//p')
		if [ -n "$want" ] && [ "$want" = "$have" ]; then
			return 0
		fi
	elif [ "$pinned" = yes ]; then
		log "rootflags pin a subvolume and btrfs is not in the initrd: this boot stays on it"
		return 0
	fi
	if [ "$pinned" = yes ]; then
		# Only a default this run made moves a pinned boot: a snapshot
		# chosen in the boot menu (an older one, after a rollback) stays.
		if [ -z "$path" ] || [ "$want" = "$default_before" ]; then
			return 0
		fi
		flags=$(without_subvol "$flags")
		flags="${flags:+$flags,}subvol=$path"
		active=$(without_subvol "$(mountfield 4)")
		mkdir -p /etc/systemd/system/sysroot.mount.d
		printf '[Mount]\nOptions=%s\n' "${active:+$active,}subvol=$path" \
			> /etc/systemd/system/sysroot.mount.d/50-provision-newsubvol.conf
		systemctl daemon-reload
	fi
	below=$(awk -v m="$sysroot/" 'index($2, m) == 1 { print $1, $2, $3, $4 }' /proc/mounts)
	umount -R "$sysroot" || return 1
	mount -t btrfs -o "rw${flags:+,$flags}" "$dev" "$sysroot" || return 1
	log "mounted the default subvolume ${path:-of $dev} on $sysroot"
	[ -n "$below" ] || return 0
	echo "$below" | while read -r src dst type opts; do
		mount -t "$type" -o "$opts" "$src" "$dst" ||
			log "could not mount $dst again ($src, $type, $opts)"
	done
}

# Combustion's units in the same initrd skip the medium once we ran (see
# combustion-skip.conf): one agent applies it, atomically.
mkdir -p /run/provision && : > /run/provision/combustion-handled

was_ro=no
if mountfield 4 | tr , '\n' | grep -qx ro; then
	was_ro=yes
	mount -o remount,rw "$sysroot" || fail "cannot remount $sysroot read-write"
fi

default_before=""
if command -v btrfs > /dev/null 2>&1 && [ "$(mountfield 3)" = btrfs ]; then
	default_before=$(btrfs subvolume get-default "$sysroot" 2> /dev/null | awk '{ print $2 }')
fi

if ! "$provision" run --root "$sysroot"; then
	fail "provision run --root $sysroot failed (see the messages above)"
fi

remount_default || fail "cannot mount the default subvolume on $sysroot"

if [ "$was_ro" = yes ]; then
	mount -o remount,ro "$sysroot" || log "cannot remount $sysroot read-only again"
fi
exit 0
