package cloudinit

import (
	"context"
	"testing"
)

// FuzzMountsSwapNTP: mounts, mount_default_fields, swap (sizes) and ntp
// never panic the parser.
func FuzzMountsSwapNTP(f *testing.F) {
	f.Add([]byte("mounts: [[ephemeral0, /mnt], [sdb, null], [sdc], ['a:/b', /c, nfs, rw, 0, 0], [/dev/x, '/y z', auto, null, null, 1]]\nmount_default_fields: [null, null, auto, 'defaults,nofail', '0', '2']\n"))
	f.Add([]byte("swap: {filename: /swap.img, size: 1.5G, maxsize: 512MiB}\n"))
	f.Add([]byte("swap: {size: auto, maxsize: 99999999999999999999T}\nmounts: [x, [], [1,2,3,4,5,6,7]]\n"))
	f.Add([]byte("ntp: {ntp_client: chrony, servers: [a], pools: b, peers: [c], allow: [10.0.0.0/8], config: {confpath: /x, service_name: y, check_exe: z, packages: [p]}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(context.Background(), DataSet{UserData: &Blob{Data: append([]byte("#cloud-config\n"), data...)}}, fuzzOpts)
	})
}
