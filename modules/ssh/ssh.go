// Package ssh applies the SSH part of a configuration to the target root:
// authorized keys (cloud-init ssh_authorized_keys and meta-data public-keys,
// Ignition sshAuthorizedKeys), validated line by line and merged into each
// user's ~/.ssh/authorized_keys, and sshd's PasswordAuthentication
// (cloud-init ssh_pwauth), and the host keys: the image's deleted, then
// supplied ones written or fresh ones generated (cloud-init ssh_deletekeys,
// ssh_keys, ssh_genkeytypes).
package ssh

import (
	"errors"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
)

// Plan returns the steps for cfg's SSH keys and ssh_pwauth. Users are
// resolved in the target's passwd when applying (the users module runs
// first); planning accepts a user the target lacks only when this config
// creates it. root may be nil (a dry run without a target tree).
func Plan(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	host, herr := planHostKeys(cfg, root)
	keys, kerr := planKeys(cfg, root)
	pw, perr := planPwauth(cfg, root)
	if err := errors.Join(herr, kerr, perr); err != nil {
		return nil, err
	}
	return append(append(host, keys...), pw...), nil
}
