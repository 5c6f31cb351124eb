//go:build windows

package winpipe

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/windows"
)

// pipePrefix begins every local named pipe's path.
const pipePrefix = `\\.\pipe\`

// bufSize is the size of each instance's in and out buffers: a hint to the
// system, which grows them as it needs.
const bufSize = 64 << 10

// pipeMode is every instance's type and mode: a byte stream, as TLS wants,
// read as bytes, blocking (the runtime's IOCP does the waiting), and closed to
// clients on other machines, which would otherwise reach the pipe over SMB.
const pipeMode = windows.PIPE_TYPE_BYTE | windows.PIPE_READMODE_BYTE |
	windows.PIPE_WAIT | windows.PIPE_REJECT_REMOTE_CLIENTS

// dialFlags are the client's CreateFile flags: overlapped, for the runtime's
// IOCP, and with a security quality of service that lets the server identify
// the client but never impersonate it (without SECURITY_SQOS_PRESENT the
// default is SecurityImpersonation: a server could act as the client).
const dialFlags = windows.FILE_FLAG_OVERLAPPED |
	windows.SECURITY_SQOS_PRESENT | windows.SECURITY_IDENTIFICATION

// ErrPipeTaken is returned (wrapped) by Listen when another process holds the
// pipe name already: the squatting that FILE_FLAG_FIRST_PIPE_INSTANCE exists
// to detect. Clients may be connecting to that process; the daemon should
// start under a new name (NewName).
var ErrPipeTaken = errors.New("another process holds the pipe name")

// Addr is a pipe's path, \\.\pipe\NAME: the address of both ends of a conn.
type Addr string

// Network returns "pipe".
func (Addr) Network() string { return "pipe" }

func (a Addr) String() string { return string(a) }

// pipePath returns the path of the pipe called name, which must be a name
// and not a path: not empty and no backslash.
func pipePath(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, '\\') || len(pipePrefix)+len(name) > 256 {
		return "", fmt.Errorf("invalid pipe name %q", name)
	}
	return pipePrefix + name, nil
}

// openMode returns the CreateNamedPipe open mode of an instance: duplex and
// overlapped, and for the first one FILE_FLAG_FIRST_PIPE_INSTANCE, so that it
// fails if someone else created the name first. Later instances must not ask
// it: they are not the first.
func openMode(first bool) uint32 {
	m := uint32(windows.PIPE_ACCESS_DUPLEX | windows.FILE_FLAG_OVERLAPPED)
	if first {
		m |= windows.FILE_FLAG_FIRST_PIPE_INSTANCE
	}
	return m
}

// ownerOnly returns the security descriptor of the pipe: owned by the current
// user, with a protected DACL (no inherited entries) that grants that user,
// and nobody else, all access.
//
// The default named-pipe DACL would also give Everyone and Anonymous read
// access and SYSTEM and Administrators full control. They are left out: the
// daemon serves one user and no service has business asking it; an
// administrator can still take ownership and rewrite the DACL, a deliberate
// act, but no process of another account connects by default. (SYSTEM and
// Administrators would pass the pipe only to meet the token and TLS anyway.)
// The one entry is all access because
// the daemon's own further instances need FILE_CREATE_PIPE_INSTANCE, its
// clients read and write, and the owner may rewrite the DACL whatever it
// says; the user's other processes are the same principal to the DACL, and
// are told apart by the policy, not by the pipe.
func ownerOnly() (*windows.SECURITY_DESCRIPTOR, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	sid := u.User.Sid.String()
	sd, err := windows.SecurityDescriptorFromString("O:" + sid + "D:P(A;;GA;;;" + sid + ")")
	if err != nil {
		return nil, fmt.Errorf("security descriptor: %w", err)
	}
	return sd, nil
}
