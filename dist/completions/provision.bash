# bash completion for provision(8).
# Installed as /usr/share/bash-completion/completions/provision; needs no
# helper from the bash-completion package, so it also works when sourced.

_provision() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="run validate status report seed schema init version help"
	local cmd="" i
	for ((i = 1; i < COMP_CWORD; i++)); do
		case " $commands " in
		*" ${COMP_WORDS[i]} "*)
			cmd=${COMP_WORDS[i]}
			break
			;;
		esac
	done

	# The value of the flag before the cursor.
	case $prev in
	--root)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		return
		;;
	--source)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -W "ec2 ec2: openstack openstack: nocloud:" -- "$cur")
		return
		;;
	--report | -o | --meta-data | --network-config | --vendor-data)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		return
		;;
	--format)
		mapfile -t COMPREPLY < <(compgen -W "nocloud configdrive combustion ignition" -- "$cur")
		return
		;;
	--timeout | --instance-id | --hostname)
		return
		;;
	esac

	local flags
	case $cmd in
	"" | run) flags="--root --source --dry-run --diff --json --strict --force --report --help" ;;
	validate) flags="--root --strict --json --help" ;;
	status | report) flags="--long --json --wait --timeout --report --help" ;;
	seed) flags="--format --iso --vfat -o --no-validate --strict --meta-data --network-config --vendor-data --instance-id --hostname --help" ;;
	schema | init | version | help) flags="--help" ;;
	esac
	[ -z "$cmd" ] && flags="$flags --version"

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$flags" -- "$cur")
		return
	fi
	case $cmd in
	"")
		mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		;;
	help)
		mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
		;;
	validate | seed)
		compopt -o filenames 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		;;
	esac
}

complete -F _provision provision
