package bootentry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/provision-dev/provision/modules/rootfs"
)

// initialSuffix ends the title of snapshot 1's entries on transactional
// systems; sdbootutil gives other snapshots the plain title.
const initialSuffix = " (Initial Installation)"

// Change records what AddSnapshot did, for the report and for Undo. ESP
// paths are relative to the ESP mount point, so that Undo works wherever the
// ESP is mounted again; EFIVar is a host path.
type Change struct {
	Old uint64 `json:"old"`
	New uint64 `json:"new"`
	// Created are the entry files AddSnapshot wrote ("loader/entries/x.conf").
	Created []string `json:"created,omitempty"`
	// Existing are entries of New that were already there (written by a
	// snapper plugin, or by an earlier run); they are left as they are.
	Existing []string `json:"existing,omitempty"`
	// Skipped lists entry files that were not used, each with the reason.
	Skipped []string `json:"skipped,omitempty"`

	// DefaultFile is where the default is kept on the ESP:
	// "loader/loader.conf" (systemd-boot) or "EFI/<os>/grubenv" (grub2-bls).
	DefaultFile string `json:"default_file,omitempty"`
	// DefaultChanged says the file was written; Before is its previous
	// content (meaningless when Created), After what was written.
	DefaultChanged     bool   `json:"default_changed,omitempty"`
	DefaultFileCreated bool   `json:"default_file_created,omitempty"`
	DefaultFileBefore  []byte `json:"default_file_before,omitempty"`
	DefaultFileAfter   []byte `json:"default_file_after,omitempty"`
	// OldDefault is the default entry before ("" when none was set) and
	// NewDefault the entry id (file name without boot counter) now set.
	OldDefault string `json:"old_default,omitempty"`
	NewDefault string `json:"new_default,omitempty"`

	// EFIVar is the LoaderEntryDefault file that was rewritten ("" when it
	// was absent, not asked for, or already right), EFIVarBefore its
	// previous raw content and OldEFIDefault that content decoded.
	EFIVar        string `json:"efivar,omitempty"`
	EFIVarBefore  []byte `json:"efivar_before,omitempty"`
	OldEFIDefault string `json:"old_efi_default,omitempty"`
}

// AddSnapshot writes, on the ESP mounted at esp, an entry for snapshot newNum
// for every entry of snapshot oldNum in loader/entries, then makes the top
// entry of newNum the default, as `sdbootutil add-all-kernels newNum` and
// `sdbootutil set-default-snapshot newNum` would. subvolPrefix is the
// subvolume holding .snapshots ("@" on SUSE images).
//
// An entry belongs to a snapshot when the subvol= of its rootflags= names
// <prefix>/.snapshots/<N>/snapshot (with or without a leading slash) and its
// root= does not name another file system; an entry without subvol= belongs
// to the snapshot its file name ends in ("<token>-<kver>-<N>[+tries].conf").
// The new entry keeps every line of the old one except: rootflags= names the
// new snapshot (in the old entry's slash form), "version" is
// "<newNum>@<kver>", the " (Initial Installation)" title suffix is dropped,
// and the file name gets the new number and a fresh "+<tries>" counter when
// /etc/kernel/tries asked for one. Old entries are kept. Entries for newNum
// that already exist are left alone and only made the default.
//
// The default is the first entry of newNum in systemd-boot's order (entries
// with tries left first, then by sort-key, machine-id, and newest version):
// the "default" line of loader/loader.conf (grub2-bls: default= in
// EFI/<os>/grubenv), created when missing, and the LoaderEntryDefault EFI
// variable when l.EFIVars is set and the variable exists.
//
// On error, whatever was already changed is undone.
func AddSnapshot(esp string, l *Loader, oldNum, newNum uint64, subvolPrefix string) (c Change, err error) {
	if l == nil {
		return Change{}, errors.New("bootentry: no boot loader entries to update (not a BLS target)")
	}
	if l.Type != SystemdBoot && l.Type != Grub2BLS {
		return Change{}, fmt.Errorf("bootentry: unsupported loader type %q", l.Type)
	}
	if oldNum == 0 || newNum == 0 || oldNum == newNum {
		return Change{}, fmt.Errorf("bootentry: snapshots %d -> %d: need two different snapshot numbers", oldNum, newNum)
	}
	oldSub, err := snapshotSubvol(subvolPrefix, oldNum)
	if err != nil {
		return Change{}, err
	}
	newSub, _ := snapshotSubvol(subvolPrefix, newNum)
	dir := filepath.Join(esp, "loader", "entries")
	files, err := scanEntries(dir)
	if err != nil {
		return Change{}, err
	}

	c = Change{Old: oldNum, New: newNum}
	var olds, news []*scanned
	byID := map[string]*scanned{}
	for _, s := range files {
		if s.err != nil {
			if s.hasSnap && s.snap == oldNum {
				return Change{}, s.err
			}
			c.Skipped = append(c.Skipped, s.err.Error())
			continue
		}
		byID[strings.ToLower(s.id)] = s
		switch {
		case s.belongs(l, oldSub, oldNum):
			olds = append(olds, s)
		case s.belongs(l, newSub, newNum):
			s.isNew = true
			news = append(news, s)
		}
	}
	if len(olds) == 0 {
		return Change{}, fmt.Errorf("%s: no boot entry for snapshot %d (rootflags=subvol=%s)", dir, oldNum, oldSub)
	}

	defer func() {
		if err != nil {
			if uerr := Undo(esp, c); uerr != nil {
				err = errors.Join(err, fmt.Errorf("undoing: %w", uerr))
			}
			c = Change{}
		}
	}()

	var cands []candidate
	for _, s := range news {
		c.Existing = append(c.Existing, "loader/entries/"+s.name)
		cands = append(cands, candidate{s.name, s.entry})
	}
	done := map[string]bool{}
	usable := 0
	for _, s := range olds {
		if why := missingKernel(esp, s.entry); why != "" {
			c.Skipped = append(c.Skipped, filepath.Join(dir, s.name)+": "+why)
			continue
		}
		ne, name, err := s.forSnapshot(l, oldNum, newNum, newSub)
		if err != nil {
			return c, err
		}
		usable++
		lid := strings.ToLower(EntryID(name))
		if done[lid] {
			continue // two old files for the same entry (with and without counter)
		}
		done[lid] = true
		if other, ok := byID[lid]; ok {
			if other.isNew {
				continue // already there: made by sdbootutil's snapper plugin or an earlier run
			}
			return c, fmt.Errorf("%s: already exists and does not boot snapshot %d", filepath.Join(dir, other.name), newNum)
		}
		if err := writeAtomic(dir, name, ne.Bytes()); err != nil {
			return c, err
		}
		c.Created = append(c.Created, "loader/entries/"+name)
		cands = append(cands, candidate{name, ne})
	}
	if usable == 0 {
		return c, fmt.Errorf("%s: no usable boot entry for snapshot %d: %s", dir, oldNum, strings.Join(c.Skipped, "; "))
	}
	top := topEntry(cands)
	if err := c.setDefault(esp, l, EntryID(top.name)); err != nil {
		return c, err
	}
	return c, nil
}

// FindEntries lists the entries of snapshot num in loader/entries of the ESP
// mounted at esp, in systemd-boot's order (the one set-default-snapshot
// would pick first), as paths relative to esp. Unreadable files are ignored.
func FindEntries(esp string, l *Loader, num uint64, subvolPrefix string) ([]string, error) {
	if l == nil {
		return nil, errors.New("bootentry: no loader")
	}
	sub, err := snapshotSubvol(subvolPrefix, num)
	if err != nil {
		return nil, err
	}
	files, err := scanEntries(filepath.Join(esp, "loader", "entries"))
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for _, s := range files {
		if s.err == nil && s.belongs(l, sub, num) {
			cands = append(cands, candidate{s.name, s.entry})
		}
	}
	slices.SortStableFunc(cands, compareCandidates)
	var out []string
	for _, c := range cands {
		out = append(out, "loader/entries/"+c.name)
	}
	return out, nil
}

// Undo reverts a Change: the default (file and EFI variable) goes back to
// what it was, then the entry files AddSnapshot created are removed. A
// default that somebody changed since is left alone.
func Undo(esp string, c Change) error {
	var errs []error
	if c.EFIVar != "" {
		if filepath.Base(c.EFIVar) != LoaderEntryDefaultVar {
			errs = append(errs, fmt.Errorf("undo: %q is not the LoaderEntryDefault variable", c.EFIVar))
		} else if cur, err := rootfs.ReadRegular(c.EFIVar, c.EFIVar, 4096); err == nil && bytes.Equal(cur, EncodeEFIString(c.NewDefault)) {
			if err := WriteEFIVar(c.EFIVar, c.EFIVarBefore); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.DefaultChanged {
		if err := c.undoDefaultFile(esp); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(c.Created) - 1; i >= 0; i-- {
		rel := c.Created[i]
		name, ok := strings.CutPrefix(rel, "loader/entries/")
		if !ok || !validEntryName(name) {
			errs = append(errs, fmt.Errorf("undo: %q is not an entry file", rel))
			continue
		}
		if err := os.Remove(filepath.Join(esp, "loader", "entries", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Change) undoDefaultFile(esp string) error {
	if !validDefaultFile(c.DefaultFile) {
		return fmt.Errorf("undo: %q is not a boot loader default file", c.DefaultFile)
	}
	host := filepath.Join(esp, filepath.FromSlash(c.DefaultFile))
	cur, err := rootfs.ReadRegular(host, host, MaxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if bytes.Equal(cur, c.DefaultFileAfter) {
		if c.DefaultFileCreated {
			return os.Remove(host)
		}
		return writeAtomic(filepath.Dir(host), filepath.Base(host), c.DefaultFileBefore)
	}
	// Edited since: put back only the default, and only if it is still ours.
	var out []byte
	if path.Base(c.DefaultFile) == "grubenv" {
		if grubenvGet(cur, "default") != c.NewDefault {
			return nil
		}
		if out, err = grubenvSet(host, cur, "default", c.OldDefault); err != nil {
			return err
		}
	} else {
		lc, err := ParseLoaderConf(host, cur)
		if err != nil {
			return err
		}
		if lc.Default() != c.NewDefault {
			return nil
		}
		if c.OldDefault == "" {
			lc.RemoveDefault()
		} else if err := lc.SetDefault(c.OldDefault); err != nil {
			return err
		}
		out = lc.Bytes()
	}
	return writeAtomic(filepath.Dir(host), filepath.Base(host), out)
}

func validDefaultFile(rel string) bool {
	if rel == "loader/loader.conf" {
		return true
	}
	d, ok := strings.CutPrefix(rel, "EFI/")
	d, ok2 := strings.CutSuffix(d, "/grubenv")
	return ok && ok2 && d != "" && d != "." && d != ".." && !strings.ContainsAny(d, "/\\") && filepath.IsLocal(rel)
}

// setDefault points the boot loader's default at id.
func (c *Change) setDefault(esp string, l *Loader, id string) error {
	rel := "loader/loader.conf"
	if l.Type == Grub2BLS {
		if l.OSName == "" || !validToken(l.OSName) {
			return fmt.Errorf("bootentry: grub2-bls: no usable NAME in os-release (%q) to find EFI/<name>/grubenv", l.OSName)
		}
		rel = "EFI/" + l.OSName + "/grubenv"
	}
	host := filepath.Join(esp, filepath.FromSlash(rel))
	before, err := rootfs.ReadRegular(host, host, MaxFileSize)
	created := errors.Is(err, fs.ErrNotExist)
	if err != nil && !created {
		return err
	}
	var after []byte
	old := ""
	if l.Type == Grub2BLS {
		old = grubenvGet(before, "default")
		if after, err = grubenvSet(host, before, "default", id); err != nil {
			return err
		}
	} else {
		lc, err := ParseLoaderConf(host, before)
		if err != nil {
			return err
		}
		old = lc.Default()
		if err := lc.SetDefault(id); err != nil {
			return err
		}
		after = lc.Bytes()
	}
	c.DefaultFile, c.OldDefault, c.NewDefault = rel, old, id
	if created || !bytes.Equal(before, after) {
		c.DefaultChanged, c.DefaultFileCreated = true, created
		c.DefaultFileBefore, c.DefaultFileAfter = before, after
		if err := writeAtomic(filepath.Dir(host), filepath.Base(host), after); err != nil {
			return err
		}
	}

	if l.EFIVars == "" {
		return nil
	}
	p := filepath.Join(l.EFIVars, LoaderEntryDefaultVar)
	cur, err := rootfs.ReadRegular(p, p, 4096)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	want := EncodeEFIString(id)
	if bytes.Equal(cur, want) {
		return nil
	}
	c.EFIVar, c.EFIVarBefore = p, cur
	c.OldEFIDefault, _ = DecodeEFIString(cur)
	return WriteEFIVar(p, want)
}

// scanned is one *.conf file of loader/entries.
type scanned struct {
	name    string
	id      string
	base    string // name without boot counter and ".conf"
	tries   int    // tries left from the name, -1 without counter
	snap    uint64 // snapshot number the name ends in
	hasSnap bool
	entry   *Entry
	err     error // unreadable, unparsable or unusable name

	root      string // effective root=
	subvol    string // effective subvol= of rootflags=
	hasSubvol bool
	isNew     bool
}

func scanEntries(dir string) ([]*scanned, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*scanned
	for _, de := range ents {
		name := de.Name()
		if !strings.HasSuffix(strings.ToLower(name), ".conf") {
			continue
		}
		p := filepath.Join(dir, name)
		s := &scanned{name: name}
		out = append(out, s)
		if !validEntryName(name) {
			s.err = fmt.Errorf("%s: unusable entry file name %q", dir, name)
			continue
		}
		s.base, s.tries = splitCounter(name)
		s.id = s.base + ".conf"
		if s.tries < 0 {
			s.id = name
		}
		s.snap, s.hasSnap = trailingNumber(s.base)
		if !de.Type().IsRegular() {
			s.err = fmt.Errorf("%s: not a regular file", p)
			continue
		}
		data, err := rootfs.ReadRegular(p, p, MaxFileSize)
		if err != nil {
			s.err = err
			continue
		}
		if s.entry, err = ParseEntry(p, data); err != nil {
			s.err = err
			continue
		}
		s.root, s.subvol, s.hasSubvol = s.entry.rootParams()
	}
	return out, nil
}

func (s *scanned) belongs(l *Loader, sub string, num uint64) bool {
	if !sameRoot(s.root, l.RootSpec) {
		return false
	}
	if s.hasSubvol {
		return strings.TrimPrefix(s.subvol, "/") == sub
	}
	return s.hasSnap && s.snap == num && hasToken(s.base, l.EntryToken)
}

// forSnapshot returns the entry for snapshot newNum made from s (an entry of
// oldNum), and its file name.
func (s *scanned) forSnapshot(l *Loader, oldNum, newNum uint64, newSub string) (*Entry, string, error) {
	p := s.entry
	kver, err := s.kernelVersion(l, oldNum)
	if err != nil {
		return nil, "", err
	}
	ne := p.Clone()
	sub := newSub
	if strings.HasPrefix(s.subvol, "/") {
		sub = "/" + newSub
	}
	if err := ne.setSubvol(sub); err != nil {
		return nil, "", fmt.Errorf("%s: %w", s.name, err)
	}
	if err := ne.Set("version", fmt.Sprintf("%d@%s", newNum, kver)); err != nil {
		return nil, "", fmt.Errorf("%s: %w", s.name, err)
	}
	if t, ok := get(ne.lines, "title"); ok && strings.HasSuffix(t, initialSuffix) {
		if err := ne.Set("title", strings.TrimSuffix(t, initialSuffix)); err != nil {
			return nil, "", fmt.Errorf("%s: %w", s.name, err)
		}
	}
	var base string
	if s.hasSnap && s.snap == oldNum {
		base = strings.TrimSuffix(s.base, "-"+strconv.FormatUint(oldNum, 10))
	} else {
		base = l.EntryToken + "-" + kver
	}
	base += "-" + strconv.FormatUint(newNum, 10)
	name := base + ".conf"
	if l.Tries != "" {
		name = base + "+" + l.Tries + ".conf"
	}
	if b, _ := splitCounter(name); !validEntryName(name) || b != base {
		return nil, "", fmt.Errorf("%s: cannot make an entry file name for snapshot %d (%q)", s.name, newNum, name)
	}
	return ne, name, nil
}

// kernelVersion finds the kernel an entry boots: from "version <N>@<kver>",
// else from the "/<token>/<kver>/linux-<sha>" path, else from the file name.
func (s *scanned) kernelVersion(l *Loader, oldNum uint64) (string, error) {
	if v := s.entry.Get("version"); v != "" {
		if _, k, ok := strings.Cut(v, "@"); ok {
			v = k
		}
		if validKver(v) {
			return v, nil
		}
	}
	if lx := s.entry.Get("linux"); strings.Count(lx, "/") >= 2 {
		if k := path.Base(path.Dir(lx)); validKver(k) {
			return k, nil
		}
	}
	b := s.base
	for _, p := range []string{"system-", "snapper-"} {
		b = strings.TrimPrefix(b, p)
	}
	if k, ok := strings.CutPrefix(b, l.EntryToken+"-"); ok && s.hasSnap {
		k = strings.TrimSuffix(k, "-"+strconv.FormatUint(s.snap, 10))
		if validKver(k) {
			return k, nil
		}
	}
	return "", fmt.Errorf("%s: cannot tell which kernel this entry of snapshot %d boots", s.name, oldNum)
}

// missingKernel says why systemd-boot would hide the entry: the file its
// linux (or uki, efi) line names is not on the ESP.
func missingKernel(esp string, e *Entry) string {
	for _, k := range []string{"linux", "uki", "efi"} {
		v := e.Get(k)
		if v == "" {
			continue
		}
		p := path.Clean("/" + strings.ReplaceAll(v, `\`, "/"))
		if _, err := os.Stat(filepath.Join(esp, filepath.FromSlash(p))); err != nil {
			return fmt.Sprintf("%s %s is not on the ESP", k, v)
		}
		return ""
	}
	return ""
}

type candidate struct {
	name  string
	entry *Entry
}

// topEntry is the first of cands in systemd-boot's (and bootctl's) order,
// the entry `sdbootutil set-default-snapshot` picks.
func topEntry(cands []candidate) candidate {
	return slices.MinFunc(cands, compareCandidates)
}

// compareCandidates orders entries like systemd's boot_entry_compare: entries
// with no tries left last; entries with a sort-key before those without,
// then by sort-key, machine-id, newest version first; finally newest id first.
func compareCandidates(a, b candidate) int {
	_, ta := splitCounter(a.name)
	_, tb := splitCounter(b.name)
	if r := cmpBool(ta == 0, tb == 0); r != 0 {
		return r
	}
	ska, oka := get(a.entry.lines, "sort-key")
	skb, okb := get(b.entry.lines, "sort-key")
	if r := cmpBool(!oka, !okb); r != 0 {
		return r
	}
	if oka && okb {
		if r := strings.Compare(ska, skb); r != 0 {
			return r
		}
		ma, hma := get(a.entry.lines, "machine-id")
		mb, hmb := get(b.entry.lines, "machine-id")
		if r := cmpBool(hma, hmb); r != 0 {
			return r
		}
		if r := strings.Compare(ma, mb); r != 0 {
			return r
		}
		if r := -compareVersions(a.entry.Get("version"), b.entry.Get("version")); r != 0 {
			return r
		}
	}
	return -compareVersions(EntryID(a.name), EntryID(b.name))
}

// EntryID is the id systemd-boot and bootctl give an entry file: the name
// without its "+LEFT[-DONE]" boot counter. It is what "default" in
// loader.conf and LoaderEntryDefault name.
func EntryID(name string) string {
	base, tries := splitCounter(name)
	if tries < 0 {
		return name
	}
	return base + ".conf"
}

// splitCounter splits "<base>+LEFT[-DONE].conf" into base and LEFT; without
// a counter (or without ".conf"), LEFT is -1 and base is the name without
// ".conf".
func splitCounter(name string) (string, int) {
	if len(name) < 5 || !strings.EqualFold(name[len(name)-5:], ".conf") {
		return name, -1
	}
	stem := name[:len(name)-5]
	plus := strings.LastIndexByte(stem, '+')
	if plus < 0 {
		return stem, -1
	}
	left, done, hasDone := strings.Cut(stem[plus+1:], "-")
	if !allDigits(left) || (hasDone && !allDigits(done)) {
		return stem, -1
	}
	n, err := strconv.Atoi(left)
	if err != nil || n > 1<<31-1 {
		return stem, -1
	}
	return stem[:plus], n
}

func allDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// trailingNumber is N of a name ending in "-N".
func trailingNumber(base string) (uint64, bool) {
	i := strings.LastIndexByte(base, '-')
	if i < 0 || !allDigits(base[i+1:]) {
		return 0, false
	}
	n, err := strconv.ParseUint(base[i+1:], 10, 64)
	return n, err == nil
}

func hasToken(base, token string) bool {
	for _, p := range []string{"", "system-", "snapper-"} {
		if strings.HasPrefix(base, p+token+"-") {
			return true
		}
	}
	return false
}

// snapshotSubvol is "<prefix>/.snapshots/<n>/snapshot" without a leading
// slash, the form compared with the subvol= of entries.
func snapshotSubvol(prefix string, n uint64) (string, error) {
	p := strings.Trim(prefix, "/")
	if p == "." {
		p = "" // path.Dir of a top-level ".snapshots/N/snapshot"
	}
	if strings.ContainsAny(p, " \t\n\",") || !utf8.ValidString(p) || slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("bootentry: unusable subvolume prefix %q", prefix)
	}
	s := ".snapshots/" + strconv.FormatUint(n, 10) + "/snapshot"
	if p != "" {
		s = p + "/" + s
	}
	return s, nil
}

// sameRoot is false only when root= and the fstab source of "/" are of the
// same kind (UUID=, PARTUUID=, LABEL=, PARTLABEL=, a device path) and differ.
func sameRoot(entryRoot, fstabRoot string) bool {
	if entryRoot == "" || fstabRoot == "" {
		return true
	}
	for _, tag := range []string{"UUID=", "PARTUUID="} {
		a, okA := cutPrefixFold(entryRoot, tag)
		b, okB := cutPrefixFold(fstabRoot, tag)
		if okA || okB {
			return okA != okB || strings.EqualFold(a, b)
		}
	}
	for _, tag := range []string{"LABEL=", "PARTLABEL="} {
		a, okA := cutPrefixFold(entryRoot, tag)
		b, okB := cutPrefixFold(fstabRoot, tag)
		if okA || okB {
			return okA != okB || a == b
		}
	}
	if strings.HasPrefix(entryRoot, "/dev/") && strings.HasPrefix(fstabRoot, "/dev/") {
		return entryRoot == fstabRoot
	}
	return true
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// validEntryName accepts names systemd-boot lists and that are safe to put
// on a loader.conf line: UTF-8, no blanks, controls or path separators, not
// hidden, ending in ".conf".
func validEntryName(n string) bool {
	if len(n) <= 5 || len(n) > 255 || n[0] == '.' || !utf8.ValidString(n) ||
		!strings.EqualFold(n[len(n)-5:], ".conf") {
		return false
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

func validKver(k string) bool {
	if k == "" || len(k) > 128 || k == "." || k == ".." {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !isDigit(c) && !isAlpha(c) && !strings.ContainsRune("._+~-", rune(c)) {
			return false
		}
	}
	return true
}

// writeAtomic replaces dir/name with data: a temporary file in dir, written
// and synced, then renamed over name.
func writeAtomic(dir, name string, data []byte) error {
	f, err := os.CreateTemp(dir, ".bootentry-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		_ = os.Chmod(tmp, 0o644) // refused on vfat, where the mount decides
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, name), err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: vfat directories have no fsync of their own
		d.Close()
	}
	return nil
}
