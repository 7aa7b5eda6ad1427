package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/provision-dev/provision/modules/rootfs"
)

// BenchmarkCommitAbort times Commit and Abort on a 100 MB root and on a
// 4 GB one (sparse files and 20000 small files). A snapshot is O(1) in
// btrfs, so the ratio large/small should stay near 1; it is logged.
func BenchmarkCommitAbort(b *testing.B) {
	requireRoot(b, "mkfs.btrfs", "btrfs")
	perOp := map[string]time.Duration{}
	for _, size := range []struct {
		name       string
		dense      int64 // bytes written for real
		sparse     int64 // apparent size of sparse files
		smallFiles int
	}{
		{"100MB", 100 << 20, 0, 0},
		// The same 100 MB spread over 2000 files, as a real small root
		// holds it: separates the metadata tree's shape (one leaf for a
		// single dense file) from the amount of data.
		{"100MB-2000files", 96 << 20, 0, 2000},
		{"4GB", 100 << 20, 3800 << 20, 20000},
	} {
		e := benchRoot(b, size.dense, size.sparse, size.smallFiles)
		for _, op := range []string{"commit", "abort"} {
			b.Run(size.name+"/"+op, func(b *testing.B) {
				ctx := context.Background()
				var total, flush time.Duration
				for i := 0; i < b.N; i++ {
					txn, err := Begin(ctx, e, Options{})
					if err != nil {
						b.Fatal(err)
					}
					r, _ := rootfs.New(txn.Root())
					r.Journal = txn.Journal()
					if err := r.WriteFile("/etc/hostname", []byte(fmt.Sprintf("node%d\n", i)), 0o644, rootfs.RootOwner); err != nil {
						b.Fatal(err)
					}
					// The engine syncs what was applied before it commits
					// (the writes' own cost); the commit is the switch.
					fstart := time.Now()
					if err := rootfs.SyncFS(txn.Root()); err != nil {
						b.Fatal(err)
					}
					flush += time.Since(fstart)
					start := time.Now()
					if op == "commit" {
						err = txn.Commit(ctx)
					} else {
						err = txn.Abort(ctx)
					}
					total += time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/"+op)
				b.ReportMetric(float64(flush.Nanoseconds())/float64(b.N), "ns/flush")
				perOp[size.name+"/"+op] = total / time.Duration(b.N)
			})
		}
	}
	for _, op := range []string{"commit", "abort"} {
		large := perOp["4GB/"+op]
		for _, small := range []string{"100MB", "100MB-2000files"} {
			if d := perOp[small+"/"+op]; d > 0 {
				b.Logf("%s: %s %v, 4GB %v, ratio %.2f", op, small, d, large, float64(large)/float64(d))
			}
		}
	}
}

// benchRoot makes a loop btrfs whose root subvolume holds dense bytes of
// real data, sparse bytes of holes and n small files, and returns its mount.
func benchRoot(b *testing.B, dense, sparse int64, n int) string {
	b.Helper()
	dir := b.TempDir()
	img, top, root := filepath.Join(dir, "img"), filepath.Join(dir, "top"), filepath.Join(dir, "root")
	run(b, "truncate", "-s", "1G", img)
	run(b, "mkfs.btrfs", "-q", img)
	mount(b, "loop", img, top)
	run(b, "btrfs", "-q", "subvolume", "create", filepath.Join(top, "@"))
	base := filepath.Join(top, "@")
	os.MkdirAll(filepath.Join(base, "etc"), 0o755)
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	f, err := os.Create(filepath.Join(base, "dense"))
	if err != nil {
		b.Fatal(err)
	}
	for w := int64(0); w < dense; w += int64(len(chunk)) {
		chunk[0]++
		f.Write(chunk)
	}
	f.Close()
	if sparse > 0 {
		for i := 0; i < 4; i++ {
			if err := os.Truncate(filepath.Join(base, fmt.Sprintf("sparse%d", i)), 0); err != nil {
				os.WriteFile(filepath.Join(base, fmt.Sprintf("sparse%d", i)), nil, 0o644)
			}
			os.Truncate(filepath.Join(base, fmt.Sprintf("sparse%d", i)), sparse/4)
		}
	}
	for i := 0; i < n; i++ {
		d := filepath.Join(base, "usr/share/many", fmt.Sprint(i/500))
		if i%500 == 0 {
			os.MkdirAll(d, 0o755)
		}
		os.WriteFile(filepath.Join(d, fmt.Sprint(i)), []byte(fmt.Sprintf("small file %d\n", i)), 0o644)
	}
	run(b, "sync")
	id := run(b, "btrfs", "inspect-internal", "rootid", base)
	run(b, "btrfs", "subvolume", "set-default", id[:len(id)-1], top)
	mount(b, "loop,subvol=@", img, root)
	return root
}
