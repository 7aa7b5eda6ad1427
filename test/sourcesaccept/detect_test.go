package sourcesaccept

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/provision-dev/provision/provision"
	"github.com/provision-dev/provision/sources/blockdev/blockdevtest"
)

// machine is a fake /proc + /sys (+ seed files) tree with 8 disks.
type machine struct {
	files map[string]string // relative to the prefix
	disks []blockdevtest.Disk
}

var eightDisks = func() []blockdevtest.Disk {
	var d []blockdevtest.Disk
	for _, n := range []string{"sda", "sdb", "nvme0n1", "nvme1n1", "vda", "vdb", "vdc", "vdd"} {
		d = append(d, blockdevtest.Disk{Name: n, SizeBytes: 4 << 20})
	}
	return d
}()

func (m machine) build(t testing.TB) string {
	t.Helper()
	disks := m.disks
	if disks == nil {
		disks = eightDisks
	}
	prefix := blockdevtest.FakeSysfs(t, disks)
	blockdevtest.WriteTree(t, prefix, m.files)
	return prefix
}

// target is a minimal first-boot root (no machine-id) to plan against.
func target(t testing.TB, extra map[string]string) string {
	t.Helper()
	files := map[string]string{
		"etc/passwd":     "root:x:0:0:root:/root:/bin/bash\n",
		"etc/group":      "root:x:0:\nwheel:x:10:\nusers:x:100:\n",
		"etc/shadow":     "root:*:19000:0:99999:7:::\n",
		"etc/gshadow":    "root:*::\nwheel:*::\nusers:*::\n",
		"etc/login.defs": "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n",
		// A network stack, so seeds with network-config plan their files.
		"usr/lib/systemd/system/NetworkManager.service": "[Unit]\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	return blockdevtest.WriteTree(t, t.TempDir(), files)
}

func countSockets(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd to count sockets in")
	}
	n := 0
	for _, e := range entries {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

func sourceNames(t testing.TB, opts provision.Options) []string {
	t.Helper()
	srcs, err := opts.Detect(context.Background())
	if err != nil {
		t.Fatalf("detect: %v", err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name())
	}
	return names
}

// detect runs DetectSources with a bringUp that only counts.
func detect(t testing.TB, prefix, root string) (*provision.Detection, int) {
	t.Helper()
	ups := 0
	det, err := provision.DetectSources(context.Background(), prefix, root, func(context.Context) error { ups++; return nil })
	if err != nil {
		t.Fatalf("DetectSources: %v", err)
	}
	return det, ups
}

const bareCmdline = "BOOT_IMAGE=/boot/vmlinuz root=UUID=0b1e-77 rootflags=subvol=@/.snapshots/1/snapshot ro quiet\n"

// Bare metal with nothing: "nothing to do" from the engine, no network
// candidate, no network brought up, no socket opened, no source waiting.
func TestBareMetalNothingToDo(t *testing.T) {
	prefix := machine{files: map[string]string{
		"proc/cmdline":                       bareCmdline,
		"sys/class/dmi/id/sys_vendor":        "Dell Inc.\n",
		"sys/class/dmi/id/product_name":      "PowerEdge R640\n",
		"sys/class/dmi/id/product_serial":    "7XK2L93\n",
		"sys/class/dmi/id/product_uuid":      "4c4c4544-0058-4b10-8032-b7c04f4c3933\n",
		"sys/class/dmi/id/chassis_asset_tag": "\n",
	}}.build(t)
	root := target(t, nil)

	det, ups := detect(t, prefix, root)
	if len(det.Sources) != 0 || det.NeedsNet || ups != 0 {
		t.Fatalf("sources %v, needs network %v, network brought up %d times; reasons %q", det.Sources, det.NeedsNet, ups, det.Reasons)
	}
	for _, r := range det.Reasons {
		if strings.Contains(r, "maybe") {
			t.Errorf("a source would wait for a device: %s", r)
		}
	}

	before := countSockets(t)
	var console strings.Builder
	opts, err := provision.SystemOptions(context.Background(), provision.SystemConfig{ProcPrefix: prefix, Root: root, DryRun: true, Console: &console})
	if err != nil {
		t.Fatal(err)
	}
	res := provision.Run(context.Background(), opts)
	if after := countSockets(t); after != before {
		t.Errorf("sockets: %d before, %d after", before, after)
	}
	if res.Err != nil || res.Status != provision.StatusNothing || res.Reason != "no configuration source found" {
		t.Errorf("status %q (%q), err %v\n%s", res.Status, res.Reason, res.Err, console.String())
	}
}

// Which sources the facts choose, through SystemOptions' detection (no
// fetch: the metadata services are not there).
func TestPlatformScenarios(t *testing.T) {
	needTools(t, "genisoimage")
	configDrive := genisoimage(t, t.TempDir(), "config-2", "configdrive")
	withConfigDrive := slices.Clone(eightDisks)
	withConfigDrive[5] = blockdevtest.Disk{Name: "vdb", Image: configDrive}

	for _, tc := range []struct {
		name string
		m    machine
		want []string
		net  bool
	}{
		{"ec2-xen-hypervisor-uuid", machine{files: map[string]string{
			"proc/cmdline":        bareCmdline,
			"sys/hypervisor/type": "xen\n",
			"sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n",
		}}, []string{"ec2"}, true},
		{"ec2-nitro-product-uuid", machine{files: map[string]string{
			"sys/class/dmi/id/product_uuid": "EC2E1916-9099-7CAF-FD21-012345ABCDEF\n",
			"sys/class/dmi/id/sys_vendor":   "Amazon EC2\n",
		}}, []string{"ec2"}, true},
		{"ec2-product-uuid-swapped", machine{files: map[string]string{
			"sys/class/dmi/id/product_uuid": "45E12AEC-DCD1-B213-94ED-012345ABCDEF\n",
		}}, []string{"ec2"}, true},
		{"openstack-product-name", machine{files: map[string]string{
			"sys/class/dmi/id/product_name": "OpenStack Nova\n",
		}}, []string{"openstack"}, true},
		{"openstack-asset-tag", machine{files: map[string]string{
			"sys/class/dmi/id/chassis_asset_tag": "OpenTelekomCloud\n",
		}}, []string{"openstack"}, true},
		{"openstack-with-config-drive", machine{files: map[string]string{
			"sys/class/dmi/id/product_name": "OpenStack Compute\n",
		}, disks: withConfigDrive}, []string{"configdrive"}, false},
		{"plain-qemu-fw-cfg-without-entries", machine{files: map[string]string{
			"sys/class/dmi/id/sys_vendor":           "QEMU\n",
			"sys/class/dmi/id/product_name":         "Standard PC (Q35 + ICH9, 2009)\n",
			"sys/firmware/qemu_fw_cfg/by_name/etc/": "",
		}}, nil, false},
		{"nocloud-serial-http", machine{files: map[string]string{
			"sys/class/dmi/id/product_serial": "ds=nocloud;s=http://10.0.2.2:8000/__dmi.system-uuid__/\n",
			"sys/class/dmi/id/product_uuid":   "0f8e0c36-1c2d-4d8f-9a3c-5c1c6a9e2b77\n",
		}}, []string{"nocloud-line"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := tc.m.build(t)
			opts, err := provision.SystemOptions(context.Background(), provision.SystemConfig{ProcPrefix: prefix, Root: target(t, nil), DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := sourceNames(t, opts); !slices.Equal(got, tc.want) {
				t.Errorf("sources %q, want %q", got, tc.want)
			}
			det, ups := detect(t, prefix, "")
			if det.NeedsNet != tc.net || (ups == 1) != tc.net || ups > 1 {
				t.Errorf("needs network %v (network brought up %d times), want %v; reasons %q", det.NeedsNet, ups, tc.net, det.Reasons)
			}
		})
	}
}

// End to end into a plan on the local NoCloud forms: the SMBIOS serial
// pointing at a seed on disk, the kernel command line, a cidata drive, and
// the seed directory in the target.
func TestLocalNoCloudIntoPlan(t *testing.T) {
	needTools(t, "cloud-localds")
	seed := map[string]string{
		"srv/seed/meta-data": "instance-id: iid-serial\nlocal-hostname: from-meta\n",
		"srv/seed/user-data": "#cloud-config\nusers:\n  - name: grace\nwrite_files:\n  - path: /etc/from-seed\n    content: x\n",
	}
	seedISO := cloudLocalds(t, t.TempDir())
	withSeedDisk := slices.Clone(eightDisks)
	withSeedDisk[6] = blockdevtest.Disk{Name: "vdc", Image: seedISO}

	for _, tc := range []struct {
		name   string
		files  map[string]string
		disks  []blockdevtest.Disk
		target map[string]string
		source string
		want   []string // plan lines that must be there (prefix match)
	}{
		{"serial-file-url", merge(seed, map[string]string{
			"sys/class/dmi/id/product_serial": "ds=nocloud;s=file:///srv/seed/;h=serial-host\n",
		}), nil, nil, "nocloud-line", []string{"users: create user grace", "files: write /etc/from-seed", "system: set hostname /etc/hostname (serial-host)"}},
		{"cmdline-path", merge(seed, map[string]string{
			"proc/cmdline": bareCmdline[:len(bareCmdline)-1] + " ds=nocloud;s=/srv/seed\n",
		}), nil, nil, "nocloud-line", []string{"users: create user grace", "system: set hostname /etc/hostname (from-meta)"}},
		{"cidata-drive", nil, withSeedDisk, nil, "nocloud-drive", []string{"users: create user bob", "system: set hostname /etc/hostname (seeded)"}},
		{"seed-dir-in-target", nil, nil, map[string]string{
			"var/lib/cloud/seed/nocloud/meta-data": "instance-id: iid-dir\n",
			"var/lib/cloud/seed/nocloud/user-data": "#cloud-config\nhostname: from-seed-dir\n",
		}, "nocloud-seed", []string{"system: set hostname /etc/hostname (from-seed-dir)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := machine{files: tc.files, disks: tc.disks}.build(t)
			root := target(t, tc.target)
			var console strings.Builder
			opts, err := provision.SystemOptions(context.Background(), provision.SystemConfig{ProcPrefix: prefix, Root: root, DryRun: true, Console: &console})
			if err != nil {
				t.Fatal(err)
			}
			res := provision.Run(context.Background(), opts)
			if res.Err != nil || res.Status != provision.StatusPlanned {
				t.Fatalf("status %q (%s): %v\n%s", res.Status, res.Reason, res.Err, console.String())
			}
			var names []string
			for _, s := range res.Sources {
				names = append(names, s.Name)
			}
			if !slices.Contains(names, tc.source) {
				t.Errorf("sources %q, want %q among them", names, tc.source)
			}
			var plan []string
			for _, s := range res.Plan {
				plan = append(plan, s.String())
			}
			for _, w := range tc.want {
				if !slices.ContainsFunc(plan, func(l string) bool { return strings.HasPrefix(l, w) }) {
					t.Errorf("no plan line starting %q in:\n%s", w, strings.Join(plan, "\n"))
				}
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// The boot job's detection on a machine with no source (8 disks, bare
// metal facts): SPEC target under 5 ms, and no socket.
func BenchmarkDetectSourcesNothing8Disks(b *testing.B) {
	prefix := machine{files: map[string]string{
		"proc/cmdline":                bareCmdline,
		"sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
	}}.build(b)
	root := target(b, nil)
	before := countSockets(b)
	ctx := context.Background()
	for b.Loop() {
		det, err := provision.DetectSources(ctx, prefix, root, func(context.Context) error {
			b.Fatal("network brought up")
			return nil
		})
		if err != nil || len(det.Sources) != 0 {
			b.Fatalf("%v %v", det.Sources, err)
		}
	}
	if after := countSockets(b); after != before {
		b.Fatalf("sockets: %d -> %d", before, after)
	}
}

// Reading a cloud-localds seed ISO through the whole dry run in process:
// detection by label on the fake tree, read, parse and plan.
func BenchmarkDryRunCloudLocaldsDrive(b *testing.B) {
	iso := cloudLocalds(b, b.TempDir())
	disks := slices.Clone(eightDisks)
	disks[5] = blockdevtest.Disk{Name: "vdb", Image: iso}
	prefix := machine{disks: disks}.build(b)
	root := target(b, nil)
	ctx := context.Background()
	for b.Loop() {
		opts, err := provision.SystemOptions(ctx, provision.SystemConfig{ProcPrefix: prefix, Root: root, DryRun: true})
		if err != nil {
			b.Fatal(err)
		}
		if res := provision.Run(ctx, opts); res.Status != provision.StatusPlanned {
			b.Fatalf("%s: %v", res.Status, res.Err)
		}
	}
}
