# Runs cloud-init's own repo writers on the inputs the Go tests use and
# stores their output (not part of the repository).
import sys, os, tempfile, shutil
sys.path.insert(0, "/tmp/ci")
import cloudinit.config.cc_zypper_add_repo as z
import cloudinit.config.cc_yum_add_repo as y
out = sys.argv[1]
zcases = {
  "zypper-basic": [{"id": "opensuse-oss", "name": "os-oss", "baseurl": "http://dl.opensuse.org/dist/leap/v/repo/oss/", "enabled": 1, "autorefresh": 1}],
  "zypper-defaults": [{"id": "my repo", "name": "My Repo", "baseurl": "https://download.example.com/repo/", "gpgcheck": True, "gpgkey": "https://download.example.com/repo/repodata/repomd.xml.key", "priority": 90}],
  "zypper-lists": [{"id": "multi", "name": "Multi, keys", "baseurl": "https://example.com/r/", "gpgkey": ["https://example.com/k1", "https://example.com/k2"]}],
}
for name, repos in zcases.items():
    d = tempfile.mkdtemp()
    z._write_repos(repos, d)
    for f in os.listdir(d):
        shutil.copy(os.path.join(d, f), os.path.join(out, name + "--" + f))
ycases = {
  "yum-epel": {"epel-testing": {"baseurl": "http://download.fedoraproject.org/pub/epel/testing/5/$basearch", "enabled": False, "failovermethod": "priority", "gpgcheck": True, "gpgkey": "file:///etc/pki/rpm-gpg/RPM-GPG-KEY-EPEL", "name": "Extra Packages for Enterprise Linux 5 - Testing"}},
  "yum-spaces": {"my repo": {"gpgkey": ["https://example.com/k1", "https://example.com/k2"], "metalink": "https://mirrors.example.com/metalink?repo=x&arch=$basearch", "name": "My repo", "Skip-If-Unavailable": True}},
}
for name, repos in ycases.items():
    d = tempfile.mkdtemp()
    y.handle("yum_add_repo", {"yum_repos": repos, "yum_repo_dir": d}, None, [])
    for f in os.listdir(d):
        shutil.copy(os.path.join(d, f), os.path.join(out, name + "--" + f))
