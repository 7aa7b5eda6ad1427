package netup

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// syncBuffer collects dnsmasq's log for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDHCPInNamespaces takes a real lease from dnsmasq across a veth pair.
// Everything lives in two namespaces the test creates (client and server),
// so nothing reaches the host's network.
func TestDHCPInNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "dnsmasq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (iproute2, dnsmasq-base)", tool)
		}
	}
	id := os.Getpid() % 100000
	cns, sns := fmt.Sprintf("pvtc%d", id), fmt.Sprintf("pvts%d", id)
	if out, err := exec.Command("ip", "netns", "add", cns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", cns).Run() })
	run(t, "ip", "netns", "add", sns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", sns).Run() })

	// Client end "pvc0" in the client namespace, server end "pvs0"; a
	// second pair whose server end stays down gives a NIC without carrier.
	run(t, "ip", "link", "add", "pvc0", "netns", cns, "type", "veth", "peer", "name", "pvs0", "netns", sns)
	run(t, "ip", "link", "add", "pvc1", "netns", cns, "type", "veth", "peer", "name", "pvs1", "netns", sns)
	run(t, "ip", "-n", sns, "addr", "add", "10.231.0.1/24", "dev", "pvs0")
	run(t, "ip", "-n", sns, "link", "set", "pvs0", "up")
	run(t, "ip", "-n", sns, "link", "set", "lo", "up")

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log syncBuffer
	dm := exec.CommandContext(ctx, "ip", "netns", "exec", sns, "dnsmasq",
		"--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root",
		"--interface=pvs0", "--bind-interfaces", "--log-facility=-", "--log-dhcp",
		"--dhcp-range=10.231.0.50,10.231.0.99,255.255.255.0,1h",
		"--dhcp-option=option:router,10.231.0.1",
		"--dhcp-option=option:dns-server,10.231.0.53",
		"--dhcp-option=option:domain-search,provision.test",
		"--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	dm.Stdout, dm.Stderr = &log, &log
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dm.Process.Kill()
		dm.Wait()
	})

	// The client side runs in the client namespace on this locked thread.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	target, err := netns.GetFromName(cns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		// Only a thread back in its own namespace may return to the pool;
		// otherwise it dies with this goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}()

	resolv := filepath.Join(dir, "etc", "resolv.conf")
	var lines []string
	res, err := Up(ctx, Config{
		ResolvConf:     resolv,
		CarrierTimeout: 10 * time.Second,
		DHCPTimeout:    30 * time.Second,
		Logf:           func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatalf("Up: %v\nlog: %s\ndnsmasq: %s", err, strings.Join(lines, "\n"), log.String())
	}
	if len(res.Leases) != 1 || res.Leases[0].Interface != "pvc0" {
		t.Fatalf("leases %+v, skipped %v, failed %v\ndnsmasq: %s", res.Leases, res.Skipped, res.Failed, log.String())
	}
	if res.Skipped["lo"] != "loopback" || res.Skipped["pvc1"] != "no carrier" {
		t.Errorf("skipped %v", res.Skipped)
	}

	// What the kernel now has, read back independently.
	link, err := netlink.LinkByName("pvc0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("addresses %v %v", addrs, err)
	}
	ip := addrs[0].IP.To4()
	ones, _ := addrs[0].Mask.Size()
	if ip[0] != 10 || ip[1] != 231 || ip[2] != 0 || ip[3] < 50 || ip[3] > 99 || ones != 24 {
		t.Errorf("address %s not from the pool", addrs[0].IPNet)
	}
	if addrs[0].ValidLft <= 0 || addrs[0].ValidLft > 3600 {
		t.Errorf("valid lifetime %d, want the lease time", addrs[0].ValidLft)
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	def := false
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			def = r.Gw.Equal(net.IPv4(10, 231, 0, 1)) && r.LinkIndex == link.Attrs().Index
		}
	}
	if !def {
		t.Errorf("no default route via 10.231.0.1: %v", routes)
	}
	b, err := os.ReadFile(resolv)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "nameserver 10.231.0.53\n") || !strings.Contains(string(b), "search provision.test\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
	if l, _ := netlink.LinkByName("pvc1"); l != nil && l.Attrs().Flags&net.FlagUp != 0 {
		t.Error("pvc1 without carrier left up")
	}

	// Called again: the interface is configured, nothing to do, no error.
	res, err = Up(ctx, Config{CarrierTimeout: 2 * time.Second, DHCPTimeout: 5 * time.Second, Interfaces: []string{"pvc0"}})
	if err != nil || len(res.Leases) != 0 || res.Skipped["pvc0"] != reasonConfigured {
		t.Fatalf("second Up: %+v %v", res, err)
	}
}
