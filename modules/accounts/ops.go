package accounts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrExists is returned when a user or group to create already exists.
var ErrExists = errors.New("already exists")

// GroupSpec is a groupadd request.
type GroupSpec struct {
	Name     string
	GID      *int // nil: allocate like groupadd
	System   bool // groupadd -r
	Password string
}

// AddGroup creates a group the way groupadd does: "name:x:gid:" in group
// and "name:!::" in gshadow (when the target has one), returning the gid.
func (db *DB) AddGroup(g GroupSpec) (int, error) {
	if err := ValidName(g.Name); err != nil {
		return -1, err
	}
	if db.Group.Lookup(g.Name) != nil {
		return -1, fmt.Errorf("group %q: %w", g.Name, ErrExists)
	}
	var gid int
	if g.GID != nil {
		gid = *g.GID
		if db.Group.LookupID(GrGID, gid) != nil {
			return -1, fmt.Errorf("group %q: GID %d is not unique: %w", g.Name, gid, ErrExists)
		}
	} else {
		var err error
		if gid, err = db.NewGID(g.System, nil); err != nil {
			return -1, fmt.Errorf("group %q: %w", g.Name, err)
		}
	}
	db.appendGroup(g.Name, gid, g.Password)
	return gid, nil
}

func (db *DB) appendGroup(name string, gid int, password string) {
	if password == "" {
		password = "!"
	}
	grPass := "x"
	if db.Gshadow == nil {
		grPass = password
	}
	db.Group.Append([]string{name, grPass, strconv.Itoa(gid), ""})
	db.mark(db.Group)
	if db.Gshadow != nil {
		db.Gshadow.Append([]string{name, password, "", ""})
		db.mark(db.Gshadow)
	}
}

// AddMember adds user to group's member list in group and gshadow, the
// way usermod -a -G (and useradd -G) does: every entry with that name,
// unless already listed. It reports whether anything changed.
func (db *DB) AddMember(group, user string) (bool, error) {
	if db.Group.Lookup(group) == nil {
		return false, fmt.Errorf("group %q: %w", group, ErrNotFound)
	}
	changed := false
	for _, l := range db.Group.Named(group) {
		db.Group.Pad(l)
		if db.Group.addMember(l, GrMem, user) {
			changed = true
			db.mark(db.Group)
		}
	}
	if db.Gshadow != nil {
		for _, l := range db.Gshadow.Named(group) {
			if db.Gshadow.addMember(l, SgMem, user) {
				changed = true
				db.mark(db.Gshadow)
			}
		}
	}
	return changed, nil
}

// UserSpec is a useradd request, in useradd's terms.
type UserSpec struct {
	Name        string
	UID         *int     // -u
	Group       string   // -g: primary group name or gid; "" for the default
	Groups      []string // -G: must exist
	Comment     string   // -c
	Home        string   // -d; "" → HOME/name
	Shell       string   // -s; "" → SHELL default
	System      bool     // -r
	NoUserGroup bool     // -N
	Password    string   // -p: stored as given; "" → "!"
	ExpireDay   *int64   // -e as days since the epoch
	Inactive    *int     // -f
}

// NewUser says what AddUser created.
type NewUser struct {
	UID, GID    int
	Home, Shell string
	// GroupCreated is set when a user-private group was added.
	GroupCreated bool
	SubUID       [2]uint64 // start, count; zero when none
	SubGID       [2]uint64
}

// AddUser creates a user exactly as useradd does: passwd, shadow, the
// user-private group (USERGROUPS_ENAB, gid = uid when free), membership in
// the supplementary groups and subordinate id ranges for regular users. It
// does not touch the home directory (see CreateHome).
func (db *DB) AddUser(u UserSpec) (*NewUser, error) {
	if err := ValidName(u.Name); err != nil {
		return nil, err
	}
	if db.Passwd.Lookup(u.Name) != nil {
		return nil, fmt.Errorf("user %q: %w", u.Name, ErrExists)
	}
	userGroup := u.Group == "" && !u.NoUserGroup && db.Defs.Bool("USERGROUPS_ENAB")
	if userGroup && db.Group.Lookup(u.Name) != nil {
		return nil, fmt.Errorf("user %q: group %q exists; name it as the primary group to use it: %w", u.Name, u.Name, ErrExists)
	}
	for _, g := range u.Groups {
		if db.Group.Lookup(g) == nil {
			if n := parseID(g); n < 0 || db.Group.LookupID(GrGID, n) == nil {
				return nil, fmt.Errorf("user %q: supplementary group %q: %w", u.Name, g, ErrNotFound)
			}
		}
	}
	nu := &NewUser{}
	// Primary group: -g, else the private group (below), else GROUP.
	switch {
	case u.Group != "":
		gid, err := db.groupID(u.Group)
		if err != nil {
			return nil, fmt.Errorf("user %q: primary group: %w", u.Name, err)
		}
		nu.GID = gid
	case !userGroup:
		gid, err := db.groupID(db.Defaults.Group)
		if err != nil {
			// useradd -D falls back to a numeric GROUP it cannot resolve.
			if n := parseID(db.Defaults.Group); n >= 0 {
				gid = n
			} else {
				return nil, fmt.Errorf("user %q: default group from /etc/default/useradd: %w", u.Name, err)
			}
		}
		nu.GID = gid
	}
	if u.UID != nil {
		if db.Passwd.LookupID(PwUID, *u.UID) != nil {
			return nil, fmt.Errorf("user %q: UID %d is not unique: %w", u.Name, *u.UID, ErrExists)
		}
		nu.UID = *u.UID
	} else {
		uid, err := db.NewUID(u.System)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		nu.UID = uid
	}
	if userGroup {
		gid, err := db.NewGID(u.System, &nu.UID)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		nu.GID = gid
		db.appendGroup(u.Name, gid, "")
		nu.GroupCreated = true
	}

	nu.Home = u.Home
	if nu.Home == "" {
		nu.Home = strings.TrimRight(db.Defaults.Home, "/") + "/" + u.Name
	}
	nu.Shell = u.Shell
	if nu.Shell == "" {
		nu.Shell = db.Defaults.Shell
	}
	pass := u.Password
	if pass == "" {
		pass = "!"
	}
	pwPass := "x"
	if db.Shadow == nil {
		pwPass = pass
	}
	db.Passwd.Append([]string{u.Name, pwPass, strconv.Itoa(nu.UID), strconv.Itoa(nu.GID), u.Comment, nu.Home, nu.Shell})
	db.mark(db.Passwd)

	if db.Shadow != nil {
		sp := []string{u.Name, pass, days(db.today()), "", "", "", "", "", ""}
		if !u.System {
			// System accounts get no aging at all, whatever was asked.
			sp[SpMin] = optNum(db.Defs.Num("PASS_MIN_DAYS", -1))
			sp[SpMax] = optNum(db.Defs.Num("PASS_MAX_DAYS", -1))
			sp[SpWarn] = optNum(db.Defs.Num("PASS_WARN_AGE", -1))
			inactive := int64(db.Defaults.Inactive)
			if u.Inactive != nil {
				inactive = int64(*u.Inactive)
			}
			sp[SpInact] = optNum(inactive)
			expire := int64(-1)
			if u.ExpireDay != nil {
				expire = *u.ExpireDay
			} else if db.Defaults.Expire != "" {
				if d, err := ParseDay(db.Defaults.Expire); err == nil {
					expire = d
				}
			}
			sp[SpExpire] = optNum(expire)
		}
		db.Shadow.Append(sp)
		db.mark(db.Shadow)
	}

	// Subordinate ids: regular users only, when the file exists and the
	// uid is in the regular range (useradd's is_sub_uid).
	uidMin, uidMax := db.Defs.Num("UID_MIN", 1000), db.Defs.Num("UID_MAX", 60000)
	subOK := !u.System && (u.UID == nil || (int64(*u.UID) >= uidMin && int64(*u.UID) <= uidMax))
	for _, s := range []struct {
		f      *File
		prefix string
		out    *[2]uint64
	}{{db.SubUID, "UID", &nu.SubUID}, {db.SubGID, "GID", &nu.SubGID}} {
		if s.f == nil || !subOK || db.Defs.Num("SUB_"+s.prefix+"_COUNT", 65536) <= 0 {
			continue
		}
		start, count, err := db.newSubRange(s.f, s.prefix)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", u.Name, err)
		}
		*s.out = [2]uint64{start, count}
	}
	for _, s := range []struct {
		f *File
		r [2]uint64
	}{{db.SubUID, nu.SubUID}, {db.SubGID, nu.SubGID}} {
		if s.r[1] == 0 || hasSubRange(s.f, u.Name, s.r[0], s.r[1]) {
			continue
		}
		s.f.Append([]string{u.Name, strconv.FormatUint(s.r[0], 10), strconv.FormatUint(s.r[1], 10)})
		db.mark(s.f)
	}

	for _, g := range u.Groups {
		name := g
		if db.Group.Lookup(g) == nil {
			name = db.Group.LookupID(GrGID, parseID(g)).Name()
		}
		if _, err := db.AddMember(name, u.Name); err != nil {
			return nil, err
		}
	}
	return nu, nil
}

// hasSubRange is have_range(): owner already covers [start, start+count).
func hasSubRange(f *File, owner string, start, count uint64) bool {
	end := start + count - 1
	for {
		var found *subRange
		for _, r := range subRanges(f.Named(owner)) {
			if r.count > 0 && start >= r.start && start <= r.start+r.count-1 {
				found = &r
				break
			}
		}
		if found == nil {
			return false
		}
		last := found.start + found.count - 1
		if last >= end {
			return true
		}
		start = last + 1
	}
}

func (db *DB) groupID(name string) (int, error) {
	return lookupGroupStrict(db.Group, name)
}

// lookupGroupStrict resolves a group name, or a gid that exists.
func lookupGroupStrict(f *File, name string) (int, error) {
	if l := f.Lookup(name); l != nil {
		return l.Int(GrGID), nil
	}
	if isDigits(name) {
		if l := f.LookupID(GrGID, parseID(name)); l != nil {
			return l.Int(GrGID), nil
		}
	}
	return -1, fmt.Errorf("group %q: %w", name, ErrNotFound)
}

func days(d int64) string {
	if d == 0 {
		return ""
	}
	return strconv.FormatInt(d, 10)
}

func optNum(n int64) string {
	if n < 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

// ParseDay turns YYYY-MM-DD into days since the epoch, as shadow's
// strtoday does for -e.
func ParseDay(s string) (int64, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return t.Unix() / 86400, nil
}

// shadowEntry returns the user's shadow entry, or nil when the target keeps
// the password in passwd.
func (db *DB) shadowEntry(user string) *Line {
	if db.Shadow == nil {
		return nil
	}
	l := db.Shadow.Lookup(user)
	if l != nil {
		db.Shadow.Pad(l)
	}
	return l
}

// PasswordHash returns the user's current hash (from shadow, else passwd).
func (db *DB) PasswordHash(user string) (string, error) {
	pw := db.Passwd.Lookup(user)
	if pw == nil {
		return "", fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	if sp := db.shadowEntry(user); sp != nil {
		return sp.Fields[SpPwdp], nil
	}
	return pw.Fields[PwPasswd], nil
}

// SetPassword stores hash for user as chpasswd -e does: in shadow with the
// last-change day set to today (a shadow entry is created when passwd says
// "x" but shadow lacks the user), and in passwd when the password lives
// there.
func (db *DB) SetPassword(user, hash string) error {
	if strings.ContainsAny(hash, ":\n") {
		return fmt.Errorf("user %q: password hash contains ':' or a newline", user)
	}
	pw := db.Passwd.Lookup(user)
	if pw == nil {
		return fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	sp := db.shadowEntry(user)
	if sp == nil && db.Shadow != nil && pw.Fields[PwPasswd] == "x" {
		sp = db.Shadow.Append([]string{user, "", "",
			optNum(db.Defs.Num("PASS_MIN_DAYS", -1)), optNum(db.Defs.Num("PASS_MAX_DAYS", -1)),
			optNum(db.Defs.Num("PASS_WARN_AGE", -1)), "", "", ""})
	}
	if sp != nil {
		sp.Fields[SpPwdp] = hash
		sp.Fields[SpLstchg] = days(db.today())
		db.mark(db.Shadow)
	}
	if sp == nil || pw.Fields[PwPasswd] != "x" {
		pw.Fields[PwPasswd] = hash
		db.mark(db.Passwd)
	}
	return nil
}

// LockPassword prefixes the hash with "!" like passwd -l (a hash already
// starting with "!" is left alone). It reports whether anything changed.
func (db *DB) LockPassword(user string) (bool, error) {
	pw := db.Passwd.Lookup(user)
	if pw == nil {
		return false, fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	l, idx, f := pw, PwPasswd, db.Passwd
	if sp := db.shadowEntry(user); sp != nil {
		l, idx, f = sp, SpPwdp, db.Shadow
	}
	if strings.HasPrefix(l.Fields[idx], "!") {
		return false, nil
	}
	l.Fields[idx] = "!" + l.Fields[idx]
	db.mark(f)
	return true, nil
}

// ExpirePassword forces a change at next login like passwd --expire: last
// change day 0.
func (db *DB) ExpirePassword(user string) (bool, error) {
	return db.setShadowField(user, SpLstchg, "0")
}

// SetExpireDate sets the account expiry (usermod -e); day < 0 clears it.
func (db *DB) SetExpireDate(user string, day int64) (bool, error) {
	return db.setShadowField(user, SpExpire, optNum(day))
}

// SetInactive sets the inactivity period (usermod -f); n < 0 clears it.
func (db *DB) SetInactive(user string, n int) (bool, error) {
	return db.setShadowField(user, SpInact, optNum(int64(n)))
}

func (db *DB) setShadowField(user string, idx int, v string) (bool, error) {
	if db.Passwd.Lookup(user) == nil {
		return false, fmt.Errorf("user %q: %w", user, ErrNotFound)
	}
	sp := db.shadowEntry(user)
	if sp == nil {
		return false, fmt.Errorf("user %q: no shadow entry for password aging", user)
	}
	if sp.Fields[idx] == v {
		return false, nil
	}
	sp.Fields[idx] = v
	db.mark(db.Shadow)
	return true, nil
}

// ValidName checks a user or group name with useradd's default rule
// (is_valid_user_name without --badname): letters, digits, '_', '-', '.',
// not starting with '-', an optional trailing '$', at most 32 bytes, not
// all digits, not "." or "..".
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("invalid name %q: %s", name, why) }
	if name == "" {
		return bad("empty")
	}
	if len(name) > 32 {
		return bad("longer than 32 characters")
	}
	if name == "." || name == ".." {
		return bad("reserved")
	}
	if name[0] == '-' {
		return bad("starts with '-'")
	}
	if isDigits(name) {
		return bad("all digits")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' ||
			(c == '$' && i == len(name)-1)
		if !ok {
			return bad(fmt.Sprintf("character %q not allowed", c))
		}
	}
	return nil
}
