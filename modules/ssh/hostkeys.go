package ssh

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/provision-dev/provision/modules"
	"github.com/provision-dev/provision/modules/accounts"
	"github.com/provision-dev/provision/modules/rootfs"
	"github.com/provision-dev/provision/provision/config"
	gossh "golang.org/x/crypto/ssh"
)

// HostKeyDir and hostKeyGlob are where sshd's host keys are and what
// cloud-init's ssh_deletekeys removes: keys, .pub files and certificates.
const (
	HostKeyDir  = "/etc/ssh"
	hostKeyGlob = "ssh_host_*key*"
	// HostCertDropIn names the certificates of ssh_keys to sshd.
	HostCertDropIn = DropInDir + "/50-provision-hostcertificate.conf"
)

// RSABits is what ssh-keygen makes by default since OpenSSH 8.5.
const RSABits = 3072

// hostKeyPath is cc_ssh's KEY_FILE_TPL.
func hostKeyPath(typ string) string { return HostKeyDir + "/ssh_host_" + typ + "_key" }

// planHostKeys returns the steps of cfg.SSHHostKeys: delete the image's
// keys, then write the supplied ones or generate fresh ones. Keys are
// made when applying, never when planning: each run (each instance of an
// image) gets its own.
func planHostKeys(cfg *config.Config, root *rootfs.Root) ([]modules.Step, error) {
	hk := cfg.SSHHostKeys
	if hk == nil {
		return nil, nil
	}
	var steps []modules.Step
	if hk.Delete {
		s, err := planDeleteHostKeys(hk, root)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s...)
	}
	if hk.HasSupplied {
		return append(steps, planSuppliedKeys(hk, root)...), nil
	}
	if root != nil && !hasKeygen(root) {
		// cloud-init runs the target's ssh-keygen: without OpenSSH there
		// is nothing to generate for, and nothing is generated.
		return steps, nil
	}
	comment := "root@localhost"
	if h := cfg.System.Hostname.Value; h != "" {
		comment = "root@" + h // ssh-keygen's user@host, after cloud-init set the name
	}
	for _, t := range hk.GenTypes {
		s, err := planGenerate(hk, t, comment, root)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s...)
	}
	return steps, nil
}

// keygenPaths are where distributions install ssh-keygen.
var keygenPaths = []string{"/usr/bin/ssh-keygen", "/bin/ssh-keygen"}

// hasKeygen reports whether the target has OpenSSH's ssh-keygen.
func hasKeygen(root *rootfs.Root) bool {
	for _, p := range keygenPaths {
		if root.Exists(p) {
			return true
		}
	}
	return false
}

// imageHostKeys lists the target's files matching ssh_host_*key*.
func imageHostKeys(root *rootfs.Root) ([]string, error) {
	entries, err := root.ReadDir(HostKeyDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if ok, _ := path.Match(hostKeyGlob, e.Name()); ok && !e.IsDir() {
			out = append(out, path.Join(HostKeyDir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

func planDeleteHostKeys(hk *config.SSHHostKeys, root *rootfs.Root) ([]modules.Step, error) {
	step := modules.Step{
		Module: "ssh",
		Action: "delete host keys",
		Target: path.Join(HostKeyDir, hostKeyGlob),
		Detail: "ssh_deletekeys: the image's keys must not be shared by its instances",
		Origin: hk.Origin,
		Apply: func(ctx context.Context, env *modules.Env) error {
			files, err := imageHostKeys(env.Root)
			if err != nil {
				return fmt.Errorf("%s: ssh_deletekeys: %w", hk.Origin, err)
			}
			for _, f := range files {
				if err := env.Root.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("%s: ssh_deletekeys: %w", hk.Origin, err)
				}
			}
			return nil
		},
	}
	if root == nil {
		return []modules.Step{step}, nil
	}
	files, err := imageHostKeys(root)
	if err != nil {
		return nil, fmt.Errorf("%s: ssh_deletekeys: %w", hk.Origin, err)
	}
	if len(files) == 0 {
		return nil, nil
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = path.Base(f)
	}
	step.Detail = fmt.Sprintf("%d files: %s", len(files), strings.Join(names, ", "))
	return []modules.Step{step}, nil
}

// keyFileModes is how cloud-init leaves a generated key: ssh-keygen's 0600
// and 0644, or, where the ssh_keys group exists (Fedora, RHEL: their sshd
// accepts a private key readable by that group), 0640 root:ssh_keys as
// sshd-keygen makes it.
func keyFileModes(root *rootfs.Root) (fs.FileMode, rootfs.Owner, string, error) {
	gid, err := accounts.LookupGroup(root, "ssh_keys")
	switch {
	case err == nil:
		return 0o640, rootfs.Owner{UID: 0, GID: gid}, "root:ssh_keys", nil
	case errors.Is(err, accounts.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return 0o600, rootfs.RootOwner, "root:root", nil
	default:
		return 0, rootfs.Owner{}, "", err
	}
}

func planGenerate(hk *config.SSHHostKeys, typ, comment string, root *rootfs.Root) ([]modules.Step, error) {
	keyPath := hostKeyPath(typ)
	// The key is made when the run applies (each instance its own), but
	// begun as soon as the plan stands: an RSA key takes a tenth of a
	// second or more, which a second core spends while the run goes on.
	key := modules.NewAhead(func() (crypto.Signer, error) { return newHostKey(typ) })
	step := modules.Step{
		Module:   "ssh",
		Action:   "generate host key",
		Target:   keyPath,
		Detail:   typ + ", new for this instance",
		Origin:   hk.GenOrigin,
		Prefetch: key.Start,
		Apply: func(ctx context.Context, env *modules.Env) error {
			// cloud-init keeps a key of the type that is already there
			// (ssh_deletekeys false).
			if env.Root.Exists(keyPath) || !hasKeygen(env.Root) {
				return nil
			}
			if err := generateHostKey(env.Root, typ, comment, key); err != nil {
				return fmt.Errorf("%s: ssh_genkeytypes %s: %w", hk.GenOrigin, typ, err)
			}
			return nil
		},
	}
	if root == nil {
		step.Detail += ", mode 0600 root:root or 0640 root:ssh_keys as the target has the group"
		return []modules.Step{step}, nil
	}
	if !hk.Delete && root.Exists(keyPath) {
		return nil, nil
	}
	mode, _, owner, err := keyFileModes(root)
	if err != nil {
		return nil, fmt.Errorf("%s: ssh_genkeytypes: %w", hk.GenOrigin, err)
	}
	step.Detail += fmt.Sprintf(", mode %s %s", rootfs.FormatMode(mode), owner)
	return []modules.Step{step}, nil
}

// newHostKey makes a private key of typ as ssh-keygen -t typ would.
func newHostKey(typ string) (crypto.Signer, error) {
	switch typ {
	case "rsa":
		return rsa.GenerateKey(rand.Reader, RSABits)
	case "ecdsa":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("cannot generate a %q key", typ)
}

// generateHostKey writes a fresh key pair of typ in OpenSSH's formats:
// the private key as ssh-keygen writes it, the public key as one line.
func generateHostKey(root *rootfs.Root, typ, comment string, ahead *modules.Ahead[crypto.Signer]) error {
	key, err := ahead.Get()
	if err != nil {
		return err
	}
	block, err := gossh.MarshalPrivateKey(key, comment)
	if err != nil {
		return err
	}
	pub, err := gossh.NewPublicKey(key.Public())
	if err != nil {
		return err
	}
	mode, owner, _, err := keyFileModes(root)
	if err != nil {
		return err
	}
	keyPath := hostKeyPath(typ)
	if err := root.WriteFile(keyPath, pem.EncodeToMemory(block), mode, owner); err != nil {
		return err
	}
	return root.WriteFile(keyPath+".pub", publicLine(pub, comment), 0o644, rootfs.RootOwner)
}

// publicLine is a .pub file: "type base64 comment\n".
func publicLine(pub gossh.PublicKey, comment string) []byte {
	line := strings.TrimSuffix(string(gossh.MarshalAuthorizedKey(pub)), "\n")
	return []byte(line + " " + comment + "\n")
}

// suppliedPath is where cc_ssh writes an ssh_keys entry.
func suppliedPath(f config.HostKeyFile) string {
	switch f.Part {
	case "public":
		return hostKeyPath(f.Type) + ".pub"
	case "certificate":
		return hostKeyPath(f.Type) + "-cert.pub"
	}
	return hostKeyPath(f.Type)
}

// planSuppliedKeys writes ssh_keys' entries (cloud-init writes each 0600,
// whatever the part), derives the public key of a private key given
// alone (cloud-init's ssh-keygen -y, with the comment root@localhost,
// redirected by its shell into a new file: 0644 under the service's umask
// 022, as ssh-keygen leaves a .pub), and names the certificates to sshd.
func planSuppliedKeys(hk *config.SSHHostKeys, root *rootfs.Root) []modules.Step {
	var steps []modules.Step
	have := map[string]bool{}
	for _, f := range hk.Supplied {
		have[f.Type+"_"+f.Part] = true
	}
	var certs []string
	var certOrigin config.Origin
	for _, f := range hk.Supplied {
		f := f
		p := suppliedPath(f)
		data := []byte(f.Data)
		steps = append(steps, writeKeyStep(f.Origin, "write host key", p, f.Type+" "+f.Part+" from ssh_keys", data, 0o600))
		if f.Part == "certificate" {
			certs = append(certs, p)
			certOrigin = f.Origin
		}
		if f.Part == "private" && !have[f.Type+"_public"] {
			if k, err := gossh.ParsePrivateKey(data); err == nil {
				steps = append(steps, writeKeyStep(f.Origin, "write host key", p+".pub", f.Type+" public, derived from the private key",
					publicLine(k.PublicKey(), "root@localhost"), 0o644))
			}
		}
	}
	if len(certs) > 0 {
		steps = append(steps, planHostCertificates(certOrigin, certs, root))
	}
	return steps
}

func writeKeyStep(o config.Origin, action, p, detail string, data []byte, mode fs.FileMode) modules.Step {
	return modules.Step{
		Module: "ssh",
		Action: action,
		Target: p,
		Detail: detail + ", mode " + rootfs.FormatMode(mode),
		Origin: o,
		Apply: func(ctx context.Context, env *modules.Env) error {
			if err := env.Root.WriteFile(p, data, mode, rootfs.RootOwner); err != nil {
				return fmt.Errorf("%s: ssh_keys: %w", o, err)
			}
			return nil
		},
	}
}

// planHostCertificates makes sshd present the certificates: cloud-init
// sets HostCertificate in sshd_config; a drop-in does the same where the
// main file includes sshd_config.d, and every certificate is named (sshd
// takes several; cloud-init's single setting keeps only the last).
func planHostCertificates(o config.Origin, certs []string, root *rootfs.Root) modules.Step {
	var b strings.Builder
	b.WriteString("# Written by provision (ssh_keys certificates).\n")
	for _, c := range certs {
		b.WriteString("HostCertificate " + c + "\n")
	}
	dropIn := []byte(b.String())
	step := modules.Step{
		Module: "ssh",
		Action: "set HostCertificate",
		Target: HostCertDropIn,
		Detail: strings.Join(certs, ", "),
		Origin: o,
		Apply: func(ctx context.Context, env *modules.Env) error {
			p, data, mode, owner, err := hostCertChange(env.Root, certs, dropIn)
			if err != nil {
				return fmt.Errorf("%s: ssh_keys: %w", o, err)
			}
			if data == nil {
				return nil
			}
			if err := env.Root.WriteFile(p, data, mode, owner); err != nil {
				return fmt.Errorf("%s: ssh_keys: %w", o, err)
			}
			return nil
		},
	}
	if root != nil {
		if p, _, _, _, err := hostCertChange(root, certs, dropIn); err == nil {
			step.Target = p
		}
	}
	return step
}

// hostCertChange decides the file that names the certificates: the
// drop-in, or sshd_config itself (a copy of /usr/etc's on openSUSE) when
// it does not include sshd_config.d. nil data: nothing to change.
func hostCertChange(root *rootfs.Root, certs []string, dropIn []byte) (string, []byte, fs.FileMode, rootfs.Owner, error) {
	main, err := readOptional(root, SSHDConfig)
	if err != nil {
		return "", nil, 0, rootfs.Owner{}, err
	}
	mainPath := SSHDConfig
	if main == nil {
		if main, err = readOptional(root, VendorSSHDConfig); err != nil {
			return "", nil, 0, rootfs.Owner{}, err
		}
		mainPath = VendorSSHDConfig
	}
	if main == nil || includesDropIns(main) {
		return HostCertDropIn, dropIn, 0o600, rootfs.RootOwner, nil
	}
	st, err := root.Stat(mainPath)
	if err != nil {
		return "", nil, 0, rootfs.Owner{}, err
	}
	out, changed := addGlobalLines(main, "HostCertificate", certs)
	if !changed && mainPath == SSHDConfig {
		return SSHDConfig, nil, 0, rootfs.Owner{}, nil
	}
	return SSHDConfig, out, st.Mode().Perm(), rootfs.RootOwner, nil
}

// addGlobalLines adds "keyword value" for each value the global section
// (before the first Match) lacks, before that Match.
func addGlobalLines(data []byte, keyword string, values []string) ([]byte, bool) {
	lines := strings.Split(string(data), "\n")
	have := map[string]bool{}
	at := len(lines)
	if at > 0 && lines[at-1] == "" {
		at--
	}
	for i, line := range lines {
		key, args := splitKeyword(line)
		if strings.EqualFold(key, "match") {
			at = i
			break
		}
		if strings.EqualFold(key, keyword) {
			have[firstArg(args)] = true
		}
	}
	var add []string
	for _, v := range values {
		if !have[v] {
			add = append(add, keyword+" "+v)
		}
	}
	if len(add) == 0 {
		return data, false
	}
	out := append(append(append([]string{}, lines[:at]...), add...), lines[at:]...)
	if at == len(lines) {
		out = append(out, "")
	}
	return []byte(strings.Join(out, "\n")), true
}
