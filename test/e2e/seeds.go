package e2e

import (
	"os"
	"path/filepath"
	"sort"
)

// Seeds are made by the tools users make them with (mkfs.vfat + mcopy,
// cloud-localds, genisoimage), never by our own `provision seed`, so the
// tests check our readers against the real thing.

// VFATImage makes a FAT image labelled label holding tree, with
// mkfs.vfat and mtools (no mount: the host kernel has no vfat).
func VFATImage(dir, name, label string, tree Tree) (string, error) {
	img := filepath.Join(dir, name)
	_ = os.Remove(img)
	if _, err := run("", "mkfs.vfat", "-n", label, "-C", img, "8192"); err != nil {
		return "", err
	}
	stage := filepath.Join(dir, name+".stage")
	_ = os.RemoveAll(stage)
	if err := tree.WriteDir(stage); err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	ents, err := os.ReadDir(stage)
	if err != nil {
		return "", err
	}
	var top []string
	for _, e := range ents {
		top = append(top, filepath.Join(stage, e.Name()))
	}
	sort.Strings(top)
	args := append([]string{"-s", "-i", img}, top...)
	if _, err := run("", "mcopy", append(args, "::")...); err != nil {
		return "", err
	}
	return img, nil
}

// CombustionStick is scenario (a)'s USB stick: FAT labelled "combustion"
// with combustion/script and its siblings.
func CombustionStick(dir string, files Tree) (string, error) {
	t := Tree{}
	for p, e := range files {
		t["combustion/"+p] = e
	}
	return VFATImage(dir, "combustion.img", "combustion", t)
}

// NoCloudISO runs cloud-localds (genisoimage, volume id "cidata").
func NoCloudISO(dir, userData, metaData, networkConfig string) (string, error) {
	w := func(name, s string) (string, error) {
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, []byte(s), 0o644)
	}
	ud, err := w("user-data", userData)
	if err != nil {
		return "", err
	}
	md, err := w("meta-data", metaData)
	if err != nil {
		return "", err
	}
	img := filepath.Join(dir, "nocloud.iso")
	args := []string{img, ud, md}
	if networkConfig != "" {
		nc, err := w("network-config", networkConfig)
		if err != nil {
			return "", err
		}
		args = append([]string{"--network-config", nc}, args...)
	}
	if _, err := run("", "cloud-localds", args...); err != nil {
		return "", err
	}
	return img, nil
}

// ConfigDriveISO is an OpenStack config drive: ISO9660 labelled config-2
// with openstack/latest/, as Nova builds it with genisoimage.
func ConfigDriveISO(dir string, latest Tree) (string, error) {
	stage := filepath.Join(dir, "configdrive.stage")
	t := Tree{}
	for p, e := range latest {
		t["openstack/latest/"+p] = e
	}
	if err := t.WriteDir(stage); err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	img := filepath.Join(dir, "configdrive.iso")
	_, err := run("", "genisoimage", "-quiet", "-o", img, "-ldots", "-allow-lowercase", "-allow-multidot",
		"-l", "-V", "config-2", "-r", "-J", stage)
	return img, err
}
