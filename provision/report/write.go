package report

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/provision-dev/provision/modules/rootfs"
)

// maxReport bounds what Read accepts.
const maxReport = 16 << 20

// JSON returns the redacted report as indented JSON.
func (r *Report) JSON() ([]byte, error) {
	r.mu.Lock()
	c := r.redacted()
	r.mu.Unlock()
	return append(appendReport(make([]byte, 0, 8<<10), c), '\n'), nil
}

// Log returns the redacted human-readable log (see FormatLog).
func (r *Report) Log() []byte {
	var b bytes.Buffer
	FormatLog(&b, r)
	return b.Bytes()
}

// Write writes the redacted report to path (RunPath when empty)
// atomically, creating the directory. Readers never see a partial file.
func (r *Report) Write(path string) error {
	if path == "" {
		path = RunPath
	}
	data, err := r.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.json")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("report: %w", err)
	}
	// Redacted, so readable like cloud-init's status.json.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("report: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// WriteTarget writes report.json and provision.log into the target's
// /var/log/provision/ through root (confined, journaled like any write).
func (r *Report) WriteTarget(root *rootfs.Root) error {
	data, err := r.JSON()
	if err != nil {
		return err
	}
	if err := root.MkdirAll(TargetDir, 0o750, rootfs.RootOwner); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := root.WriteFile(TargetJSON, data, 0o640, rootfs.RootOwner); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := root.WriteFile(TargetLog, r.Log(), 0o640, rootfs.RootOwner); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// Read loads a report written by Write.
func Read(path string) (*Report, error) {
	if path == "" {
		path = RunPath
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxReport+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if b.Len() > maxReport {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxReport)
	}
	return Parse(path, b.Bytes())
}

// Parse decodes a report; name is used in errors.
func Parse(name string, data []byte) (*Report, error) {
	r := &Report{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if r.Version < 1 || r.Version > Version {
		return nil, fmt.Errorf("%s: unsupported report version %d", name, r.Version)
	}
	if err := checkKind(name, r.Kind); err != nil {
		return nil, err
	}
	switch r.Status {
	case StatusRunning, StatusDone, StatusError, StatusDisabled:
	default:
		return nil, fmt.Errorf("%s: unknown status %q", name, r.Status)
	}
	for i, m := range r.Modules {
		if m == nil {
			return nil, fmt.Errorf("%s: module %d is null", name, i)
		}
		for j, s := range m.Steps {
			if s == nil {
				return nil, fmt.Errorf("%s: module %s: step %d is null", name, m.Name, j)
			}
		}
	}
	r.now = time.Now
	return r, nil
}

// Wait polls path until the report says the run finished, and returns it.
// A missing file counts as "not started yet". When ctx ends first it
// returns the last report read (possibly nil) and ctx's error.
func Wait(ctx context.Context, path string, interval time.Duration) (*Report, error) {
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	var last *Report
	for {
		r, err := Read(path)
		switch {
		case err == nil:
			last = r
			if !r.Running() {
				return r, nil
			}
		case errors.Is(err, fs.ErrNotExist):
		default:
			return nil, err
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return last, ctx.Err()
		case <-t.C:
		}
	}
}
