package provision

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkRunBenchSeed is the engine's side of `make bench`: the benchmark
// configuration of test/bench/seed (groups, users with passwords, keys,
// files, hostname, timezone, sudo) applied to a fresh copy of the Debian
// tree of test/bench/tree.sh on tmpfs, through the undo journal. Profile
// it with -cpuprofile to see where a run's CPU goes.
func BenchmarkRunBenchSeed(b *testing.B) {
	base := b.TempDir()
	if out, err := exec.Command("bash", "-c", ". ../test/bench/tree.sh && bench_tree \"$0\"", base).CombinedOutput(); err != nil {
		b.Skipf("cannot build the benchmark tree (bash, cp): %v %s", err, out)
	}
	seed, err := filepath.Abs("../test/bench/seed")
	if err != nil {
		b.Fatal(err)
	}
	work, err := os.MkdirTemp("/dev/shm", "provision-bench")
	if err != nil {
		b.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "root")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.RemoveAll(dir)
		if out, err := exec.Command("cp", "-a", base, dir).CombinedOutput(); err != nil {
			b.Fatalf("%v %s", err, out)
		}
		b.StartTimer()
		opts, err := SystemOptions(context.Background(), SystemConfig{Root: dir, SourceSpec: []string{seed}, Console: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		if res := Run(context.Background(), opts); res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}
