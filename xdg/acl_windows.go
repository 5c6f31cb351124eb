//go:build windows

package xdg

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// What "private" means on Windows, the counterpart of Unix's "owned by
// you, no group or other permission bits", checked on the security
// descriptor of a file or directory:
//
//   - Its owner is the current user, SYSTEM or Administrators.
//   - It has a DACL: none, or a NULL one, lets everyone in.
//   - Every ACE that allows anything is for the current user, SYSTEM or
//     Administrators; inherit-only ones count too, since they open what is
//     made inside. Deny ACEs only take access away and pass. An ACE whose
//     type opx does not read (object and callback ACEs) fails closed.
//
// SYSTEM and Administrators are tolerated because refusing them protects
// nothing: SYSTEM is the operating system, and an administrator can take
// ownership of any file and read it with the backup privilege, whatever
// its DACL (as root can on Unix, where the check does not count root
// either). Refusing them would refuse what every Windows profile holds:
// %LOCALAPPDATA% and %APPDATA% grant both, and anything made there
// without a protected DACL inherits that, and a file written from an
// elevated prompt is owned by Administrators. The Windows OpenSSH client
// and server accept only these three on private keys and authorized_keys;
// tailscaled's state directory grants its user and Administrators, so
// that administrators can still read its logs. What opx makes grants the
// current user alone (privateSecurity), so the tolerance matters only for
// what it finds.

// trusted reports whether sid may own or use a private file beside me.
func trusted(sid, me *windows.SID) bool {
	return sid.Equals(me) || sid.IsWellKnown(windows.WinLocalSystemSid) ||
		sid.IsWellKnown(windows.WinBuiltinAdministratorsSid)
}

// ACE types (winnt.h) that only deny; x/sys/windows names the first two.
const (
	aceAllowed              = windows.ACCESS_ALLOWED_ACE_TYPE
	aceDenied               = windows.ACCESS_DENIED_ACE_TYPE
	aceDeniedObject         = 0x6
	aceDeniedCallback       = 0xA
	aceDeniedCallbackObject = 0xC
)

// grant is an allow ACE for someone opx does not trust.
type grant struct {
	sid         *windows.SID
	mask        windows.ACCESS_MASK
	inheritOnly bool // applies only to what is made inside
}

// exposure is what keeps a security descriptor from being private; its
// zero value is private.
type exposure struct {
	owner  *windows.SID // an owner opx does not trust, or nil
	noDACL bool         // no DACL, or a NULL one: everyone has full access
	grants []grant      // allow ACEs for SIDs opx does not trust
	odd    []byte       // types of the ACEs opx does not read
}

// inspect reads sd's owner and DACL for the current user me. An error
// means they cannot be read, which the caller refuses too.
func inspect(sd *windows.SECURITY_DESCRIPTOR, me *windows.SID) (exposure, error) {
	var e exposure
	owner, _, err := sd.Owner()
	if err != nil || owner == nil {
		return e, errors.New("cannot read its owner")
	}
	if !trusted(owner, me) {
		e.owner = owner
	}
	dacl, _, err := sd.DACL()
	switch {
	case errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND), err == nil && dacl == nil:
		e.noDACL = true
		return e, nil
	case err != nil:
		return e, fmt.Errorf("cannot read its access list: %w", err)
	}
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return e, fmt.Errorf("cannot read its access list: %w", err)
		}
		switch ace.Header.AceType {
		case aceAllowed:
			sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
			if ace.Mask != 0 && !trusted(sid, me) {
				e.grants = append(e.grants, grant{sid, ace.Mask, ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0})
			}
		case aceDenied, aceDeniedObject, aceDeniedCallback, aceDeniedCallbackObject:
		default:
			e.odd = append(e.odd, ace.Header.AceType)
		}
	}
	return e, nil
}

// err is the *NotPrivateError for e, the exposure of the file or directory
// at path (kind says which), or nil when there is none. The fix is an
// icacls command that leaves the current user alone on it.
func (e exposure) err(kind, path string, me *windows.SID) error {
	np := &NotPrivateError{Kind: kind, Path: path}
	switch {
	case e.owner != nil:
		np.Fault = fmt.Sprintf("is owned by %s, not by you (%s)", account(e.owner), account(me))
		np.Fix = "remove it or run as its owner"
	case e.noDACL:
		np.Fault = "has no access list (a NULL DACL), so everyone has full access"
		np.Fix = "run: " + ownerOnlyCommand(kind, path, me, nil)
	case len(e.grants) > 0:
		var who []string
		var sids []*windows.SID
		for _, g := range e.grants {
			who = append(who, account(g.sid)+" "+g.describe())
			sids = append(sids, g.sid)
		}
		np.Fault = "is open to other users (" + strings.Join(who, "; ") + ")"
		np.Fix = "run: " + ownerOnlyCommand(kind, path, me, sids)
	case len(e.odd) > 0:
		np.Fault = fmt.Sprintf("has access rules opx cannot check (ACE types %v)", e.odd)
		np.Fix = fmt.Sprintf("remove them (icacls \"%s\" lists them), or move it away and let opx create it again", path)
	default:
		return nil
	}
	return np
}

// ownerOnlyCommand is the icacls command that removes the inherited ACEs,
// grants me full control alone (inherited inside a directory) and removes
// the explicit ACEs of others: SIDs in the *S-1-... form icacls takes, each
// once, quoted for cmd and PowerShell alike.
func ownerOnlyCommand(kind, path string, me *windows.SID, others []*windows.SID) string {
	perm := "F"
	if kind == kindDir {
		perm = "(OI)(CI)F"
	}
	cmd := fmt.Sprintf("icacls \"%s\" /inheritance:r /grant:r \"*%s:%s\"", path, me, perm)
	var remove []string
	for _, sid := range others {
		if s := "\"*" + sid.String() + "\""; !slices.Contains(remove, s) {
			remove = append(remove, s)
		}
	}
	if len(remove) > 0 {
		cmd += " /remove " + strings.Join(remove, " ")
	}
	return cmd
}

// account names sid for a person: "BUILTIN\Users (S-1-5-32-545)", or the
// SID alone when it maps to no account.
func account(sid *windows.SID) string {
	name, domain, _, err := sid.LookupAccount("")
	switch {
	case err != nil || name == "":
		return sid.String()
	case domain != "":
		return domain + `\` + name + " (" + sid.String() + ")"
	default:
		return name + " (" + sid.String() + ")"
	}
}

// Access rights (winnt.h) that let one change a file or directory, beyond
// the ones x/sys/windows names.
const (
	fileDeleteChild = 0x40
	fileAllAccess   = 0x1F01FF
)

// describe says what g lets its SID do: "may read it".
func (g grant) describe() string {
	m := g.mask
	what := "it"
	if g.inheritOnly {
		what = "what is made in it"
	}
	read := m&(windows.FILE_READ_DATA|windows.GENERIC_READ|windows.GENERIC_ALL) != 0
	change := m&(windows.FILE_WRITE_DATA|windows.FILE_APPEND_DATA|fileDeleteChild|windows.DELETE|
		windows.WRITE_DAC|windows.WRITE_OWNER|windows.GENERIC_WRITE|windows.GENERIC_ALL) != 0
	switch {
	case m&fileAllAccess == fileAllAccess || m&windows.GENERIC_ALL != 0:
		return "has full control of " + what
	case read && change:
		return "may read and change " + what
	case read:
		return "may read " + what
	case change:
		return "may change " + what
	default:
		return fmt.Sprintf("has access 0x%x to %s", uint32(m), what)
	}
}
