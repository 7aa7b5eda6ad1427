package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// These run in every `go test`: the harness's own pieces, without a VM.

func TestCPIOReadableByCpio(t *testing.T) {
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed: cannot check the archive with the real tool")
	}
	var buf bytes.Buffer
	c := NewCPIO(&buf)
	Tree{
		"init":          {Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		"bin/sh":        {Link: "busybox"},
		"lib/modules/a": {Mode: 0o644, Data: []byte("xyz")},
		"sysroot":       {Mode: os.ModeDir | 0o755},
	}.WriteCPIO(c)
	c.CharDev("dev/console", 0o600, 5, 1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "-v", "--quiet")
	cmd.Stdin = &buf
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cpio -t: %v", err)
	}
	got := string(out)
	for _, w := range []string{"bin/sh -> busybox", "init", "lib/modules/a", "sysroot", "dev/console"} {
		if !strings.Contains(got, w) {
			t.Errorf("cpio -t does not list %q:\n%s", w, out)
		}
	}
	if !strings.Contains(string(out), "crw-------") {
		t.Errorf("dev/console is not a character device:\n%s", out)
	}
}

func TestModuleResolveOrder(t *testing.T) {
	dir := t.TempDir()
	k := &Kernel{Version: "6.1.0-test", Root: dir}
	if err := os.MkdirAll(k.ModDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	dep := "kernel/fs/btrfs/btrfs.ko: kernel/crypto/xor.ko kernel/lib/libcrc32c.ko\n" +
		"kernel/crypto/xor.ko:\n" +
		"kernel/lib/libcrc32c.ko:\n" +
		"kernel/fs/nls/nls_iso8859-1.ko:\n" +
		"kernel/drivers/virtio/virtio_ring.ko:\n" +
		"kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko\n"
	if err := os.WriteFile(filepath.Join(k.ModDir(), "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(k.ModDir(), "modules.builtin"), []byte("kernel/drivers/virtio/virtio_pci.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ms, err := LoadModules(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ms.Resolve([]string{"virtio_pci", "virtio_blk", "btrfs", "nls_iso8859-1", "xor"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/block/virtio_blk.ko",
		"kernel/crypto/xor.ko", "kernel/lib/libcrc32c.ko", "kernel/fs/btrfs/btrfs.ko", "kernel/fs/nls/nls_iso8859-1.ko"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %q\nwant %q", got, want)
	}
	if _, err := ms.Resolve([]string{"no_such_module"}); err == nil {
		t.Error("an unknown module resolved")
	}
}

func TestTimeToSwitchRoot(t *testing.T) {
	d, ok := timeToSwitchRoot("x\r\nprovision init: switching root to /sysroot, exec /sbin/init (1.234s after start)\r\n")
	if !ok || d != 1234*time.Millisecond {
		t.Errorf("got %v, %v", d, ok)
	}
	if d, ok := timeToSwitchRoot("provision init: switching root to /sysroot, exec /sbin/init (165ms after start)"); !ok || d != 165*time.Millisecond {
		t.Errorf("got %v, %v", d, ok)
	}
	if _, ok := timeToSwitchRoot("kernel panic"); ok {
		t.Error("found a time in a console without the line")
	}
	if m := median([]time.Duration{3, 1, 2, 10}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]float64{1.5, 0.5, 0.9}); m != 0.9 {
		t.Errorf("median of ratios = %v", m)
	}
	if m := median([]float64{1.5, 0.5}); m != 1 {
		t.Errorf("median of two ratios = %v", m)
	}
}

func TestRunPhases(t *testing.T) {
	console := "[ OK ] provision: done\r\nprovision: took 812ms: recover 3.1ms, detect 120ms, commit 75ms\r\nprovision init: switching root"
	took, phases, ok := runPhases(console)
	want := []benchPhase{{"recover", 3100 * time.Microsecond}, {"detect", 120 * time.Millisecond}, {"commit", 75 * time.Millisecond}}
	if !ok || took != 812*time.Millisecond || !slices.Equal(phases, want) {
		t.Fatalf("runPhases = %v, %v, %v", took, phases, ok)
	}
	for _, bad := range []string{"no such line", "provision: took 1s: detect soon\n", "provision: took long: detect 1ms\n"} {
		if _, _, ok := runPhases(bad); ok {
			t.Errorf("runPhases(%q) found phases", bad)
		}
	}
	second := []benchPhase{{"recover", 2 * time.Millisecond}, {"detect", 100 * time.Millisecond}, {"commit", 85 * time.Millisecond}}
	third := []benchPhase{{"recover", 1 * time.Millisecond}, {"detect", 140 * time.Millisecond}, {"commit", 65 * time.Millisecond}}
	got := phaseMedians([][]benchPhase{want, second, third}, []time.Duration{300 * time.Millisecond, 200 * time.Millisecond, 250 * time.Millisecond})
	if w := "recover 2ms, detect 120ms, commit 75ms; outside the run 250ms"; got != w {
		t.Errorf("phaseMedians = %q, want %q", got, w)
	}
}
