# fish completion for provision(8).
# Installed as /usr/share/fish/vendor_completions.d/provision.fish.

set -l commands run validate status report seed schema init version help
set -l nocmd "not __fish_seen_subcommand_from $commands"

complete -c provision -f

# Commands
complete -c provision -n $nocmd -a run -d 'Provision the target root (default)'
complete -c provision -n $nocmd -a validate -d 'Check configuration offline'
complete -c provision -n $nocmd -a status -d "Print the last run's report"
complete -c provision -n $nocmd -a report -d 'Alias of status'
complete -c provision -n $nocmd -a seed -d 'Build a seed medium'
complete -c provision -n $nocmd -a schema -d 'Print the JSON Schema of the cloud-config keys'
complete -c provision -n $nocmd -a init -d 'PID 1 helper of a minimal initramfs'
complete -c provision -n $nocmd -a version -d 'Print the version'
complete -c provision -n $nocmd -a help -d 'Print help'
complete -c provision -n $nocmd -l version -d 'Print the version'
complete -c provision -s h -l help -d 'Print help'
complete -c provision -n '__fish_seen_subcommand_from help' -a "$commands"

# run (also without a command)
set -l run "$nocmd; or __fish_seen_subcommand_from run"
complete -c provision -n $run -l root -r -a '(__fish_complete_directories)' -d 'Target root'
complete -c provision -n $run -l source -r -F -d 'Configuration source'
complete -c provision -n $run -l dry-run -d 'Print the plan; change nothing'
complete -c provision -n $run -l diff -d 'Plan with a diff of every file and every script'
complete -c provision -n $run -l json -d 'Print the plan or result as JSON'
complete -c provision -n $run -l strict -d 'Treat warnings as errors'
complete -c provision -n $run -l force -d 'Provision even when not a first boot'
complete -c provision -n $run -l report -r -F -d 'Where to write the run report'

# validate
set -l validate '__fish_seen_subcommand_from validate'
complete -c provision -n $validate -F
complete -c provision -n $validate -l root -r -F -d 'Check against a root tree or disk image'
complete -c provision -n $validate -l strict -d 'Treat warnings as errors'
complete -c provision -n $validate -l json -d 'Print the result as JSON'

# status
set -l status_ '__fish_seen_subcommand_from status report'
complete -c provision -n $status_ -l long -d 'Print result, times, errors, modules and failed output'
complete -c provision -n $status_ -l json -d 'Print the report as JSON'
complete -c provision -n $status_ -l wait -d 'Wait until the run has finished'
complete -c provision -n $status_ -l timeout -x -d 'With --wait: give up after this long'
complete -c provision -n $status_ -l report -r -F -d 'Report file'

# seed
set -l seed '__fish_seen_subcommand_from seed'
complete -c provision -n $seed -F
complete -c provision -n $seed -l format -x -a 'nocloud configdrive combustion ignition' -d 'Medium format'
complete -c provision -n $seed -l iso -d 'Write an ISO9660 image'
complete -c provision -n $seed -l vfat -d 'Write a FAT image'
complete -c provision -n $seed -s o -r -F -d 'Image file to write'
complete -c provision -n $seed -l no-validate -d 'Pack without validating'
complete -c provision -n $seed -l strict -d 'Refuse a config with warnings too'
complete -c provision -n $seed -l meta-data -r -F -d 'meta-data file'
complete -c provision -n $seed -l network-config -r -F -d 'network-config file'
complete -c provision -n $seed -l vendor-data -r -F -d 'vendor-data file'
complete -c provision -n $seed -l instance-id -x -d 'instance-id of generated meta-data'
complete -c provision -n $seed -l hostname -x -d 'Host name of generated meta-data'
