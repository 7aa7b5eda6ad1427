package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// (e) What acts after the commit, in a real initrd. The disk image grew
// by 512 MiB before the boot, as a cloud disk larger than its image:
// growpart finds the root's btrfs on the whole disk /dev/vda (no
// partition: skipped, as cloud-init does) and resize_rootfs grows the
// mounted btrfs to the disk's end. power_state: provision leaves a
// one-shot unit in /run; the booted system runs it once it has started:
// the condition (a shell command run in the booted root) holds, and the
// unit powers the machine off. The same config takes the harness' own
// power-off away (a drop-in clearing e2e.service's ExecStartPost) and
// orders the unit after the harness' report, so only power_state can end
// this boot: a unit that does not work leaves the VM running until the
// timeout.
func (b *tierB) afterCommit(t *testing.T) {
	m := b.machine(t)
	st, err := os.Stat(m.vm.Disk.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(m.vm.Disk.Path, st.Size()+512<<20); err != nil {
		t.Fatal(err)
	}
	userData := `#cloud-config
growpart: {mode: auto, devices: [/]}
resize_rootfs: true
power_state:
  mode: poweroff
  message: "tierb power_state: goodbye"
  condition: "test -s /etc/machine-id && test -e /etc/tierb-power"
write_files:
  - path: /etc/tierb-power
    content: "set by the same config the condition checks\n"
  - path: /etc/systemd/system/e2e.service.d/no-poweroff.conf
    content: "[Service]\nExecStartPost=\n"
  - path: /etc/systemd/system/provision-power-state.service.d/after-e2e.conf
    content: "[Unit]\nAfter=e2e.service\n"
`
	iso, err := NoCloudISO(m.dir, userData, "instance-id: iid-tierb-power\nlocal-hostname: tierb-power\n", "")
	if err != nil {
		t.Fatal(err)
	}
	m.vm.Seeds = []string{iso}
	res := m.boot()
	in := m.inspect()
	tierBCommon(t, in, res)
	es, out, err := ReadJournal(filepath.Join(in.Top, "@/var/log/journal"))
	if err != nil {
		t.Fatalf("reading the journal: %v", err)
	}
	agent := FirstIndex(es, "power: schedule poweroff")
	started := FirstIndex(es, "Starting provision-power-state.service")
	switched := FirstIndex(es, "Switching root")
	if agent < 0 || started < 0 {
		t.Fatalf("journal lacks the agent's step (%d) or the unit's start (%d):\n%s", agent, started, out)
	}
	// journald is gone before the end: the console shows the power-off.
	if !strings.Contains(res.Console, "Powering off") {
		t.Errorf("the console does not show the machine powering off")
	}
	if switched >= 0 && es[started].Mono < es[switched].Mono {
		t.Errorf("the unit ran before the switch to the booted root:\n%s\n%s", es[started].Text, es[switched].Text)
	}
	for _, bad := range []string{"provision-power-state.service: Skipped", "Failed to start provision-power-state.service", "provision-power-state.service: Failed"} {
		if i := FirstIndex(es, bad); i >= 0 {
			t.Errorf("%s", es[i].Text)
		}
	}
	if i := FirstIndex(es, "tierb power_state: goodbye"); i < 0 || es[i].Mono < es[started].Mono {
		t.Errorf("the journal does not carry the message of the power-off from the unit (%d)", i)
	}

	tierBContains(t, "console", res.Console, "/dev/vda is a whole disk: not a partition")
	tierBContains(t, "console", res.Console, "SKIPPED: /: ")
	tierBContains(t, "console", res.Console, "RESIZED: btrfs device 1 (/dev/vda) from 3.0 GiB to 3.5 GiB")
	var fs unix.Statfs_t
	if err := unix.Statfs(in.Top, &fs); err != nil {
		t.Fatal(err)
	}
	if size := int64(fs.Blocks) * fs.Bsize; size < 3<<30+256<<20 {
		t.Errorf("the root btrfs is %d bytes after the boot: not grown to the disk's 3.5 GiB", size)
	}
}
