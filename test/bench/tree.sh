# Sourced by the benchmark scripts: bench_tree DIR makes the Debian tree every
# benchmark provisions — this machine's account files, skel and zoneinfo,
# and a machine-id (not a first boot: the explicit --source asks for the run).
bench_tree() {
  local base=$1
  mkdir -p "$base/etc/default" "$base/usr/share" "$base/home" "$base/root" "$base/var/lib"
  for f in passwd group shadow gshadow login.defs subuid subgid; do
    [ -e /etc/$f ] && cp -a /etc/$f "$base/etc/"
  done
  [ -e /etc/default/useradd ] && cp -a /etc/default/useradd "$base/etc/default/"
  cp -a /etc/skel "$base/etc/"
  cp -a /usr/share/zoneinfo "$base/usr/share/"
  echo 0123456789abcdef0123456789abcdef > "$base/etc/machine-id"
}
