package cloudinit

import (
	"context"
	"testing"
)

// Bad input must never panic or hang; errors are fine.

var fuzzOpts = Options{MaxDecompressed: 1 << 20, FetchInclude: func(ctx context.Context, url string) ([]byte, error) {
	return []byte("#cloud-config\nhostname: inc\n"), nil
}}

func FuzzUserData(f *testing.F) {
	f.Add([]byte("#cloud-config\nusers: [default, {name: a, uid: 5}]\nwrite_files: [{path: /x, content: eA==, encoding: b64}]\n"))
	f.Add([]byte("#!/bin/sh\necho\n"))
	f.Add([]byte("#include\nhttp://x\n"))
	f.Add([]byte("#cloud-config-archive\n- '#cloud-config\n  a: 1'\n"))
	f.Add([]byte("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\n--b--\n"))
	f.Add(gzipZeros(1000))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(context.Background(), DataSet{UserData: &Blob{Data: data}}, fuzzOpts)
	})
}

func FuzzCloudConfig(f *testing.F) {
	f.Add([]byte("users: [default]\nchpasswd: {list: 'a:b'}\nmerge_how: dict(replace)+list(append)\n"))
	f.Add([]byte("a: &x [1, *x]\n"))
	f.Add([]byte("write_files: [{path: /a, permissions: '0o9999'}]\nruncmd: [[a, 1], b]\n"))
	f.Add([]byte("growpart: {mode: off, devices: [/, /dev/vda2]}\nresize_rootfs: noblock\npower_state: {mode: reboot, delay: '+5', condition: [test, -f, /x], timeout: 1.5}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = Parse(context.Background(), DataSet{
			UserData:   &Blob{Data: append([]byte("#cloud-config\n"), data...)},
			VendorData: &Blob{Data: append([]byte("#cloud-config\n"), data...)},
		}, fuzzOpts)
	})
}

func FuzzMIME(f *testing.F) {
	f.Add("b", "text/cloud-config", "base64", []byte("I2Nsb3VkLWNvbmZpZwphOiAx"))
	f.Add("=====", "text/x-include-url", "", []byte("http://x\n"))
	f.Add("x", "multipart/mixed; boundary=y", "", []byte("--y\n\nhi\n--y--\n"))
	f.Fuzz(func(t *testing.T, boundary, ctype, cte string, body []byte) {
		msg := "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"" + boundary + "\"\n\n--" + boundary +
			"\nContent-Type: " + ctype + "\nContent-Transfer-Encoding: " + cte + "\n\n" + string(body) + "\n--" + boundary + "--\n"
		_, _ = Parse(context.Background(), DataSet{UserData: &Blob{Data: []byte(msg)}}, fuzzOpts)
	})
}

func FuzzMetaData(f *testing.F) {
	f.Add([]byte("instance-id: i-1\nlocal-hostname: h.example\npublic-keys: {a: {openssh-key: k}}\n"), []byte(`{"uuid": "u", "public_keys": {"k": "x"}}`), []byte("network: {version: 2, ethernets: {}}\n"))
	f.Fuzz(func(t *testing.T, md, osmd, netcfg []byte) {
		_, _ = Parse(context.Background(), DataSet{
			MetaData:          &Blob{Data: md},
			OpenStackMetaData: &Blob{Data: osmd},
			NetworkConfig:     &Blob{Data: netcfg},
		}, fuzzOpts)
		_, _ = DefaultUserFromCloudCfg(map[string][]byte{"/etc/cloud/cloud.cfg": md})
	})
}
