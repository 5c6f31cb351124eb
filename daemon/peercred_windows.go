package daemon

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/policy"
	"github.com/opxhq/opx/winpipe"
)

// peerCred finds the process at the other end of the pipe conn c
// (GetNamedPipeClientProcessId), opens it at once and holds that handle as
// the pin while it is identified (an open handle keeps a pid from being
// reused), and reads the user SID of its token. UID and GID are -1, as
// os.Getuid reports them on Windows; the daemon compares SIDs instead.
//
// The pid was read after the accept, so it may already name a newer
// process, if the client exited at once and its pid was reused: identify
// refuses a process created after the accept (policy.ReadProcess's Start),
// which is why the pin is not exact.
func peerCred(c net.Conn) (*Peer, peerPin, error) {
	pid, err := winpipe.ClientPID(c)
	if err != nil {
		return nil, noPin, err
	}
	p := &Peer{PID: int(pid), UID: -1, GID: -1}
	// SYNCHRONIZE, for alive's wait; both are granted to the process's
	// user by the default process DACL.
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION|windows.SYNCHRONIZE, false, pid)
	if err != nil {
		return p, noPin, fmt.Errorf("open process %d: %w", pid, err)
	}
	pin := peerPin{h: h}
	sid, err := processSID(h)
	if err != nil {
		pin.release()
		return p, noPin, fmt.Errorf("read the user of process %d: %w", pid, err)
	}
	p.SID = sid
	return p, pin, nil
}

// processSID is the user SID of process h's token, as a string.
func processSID(h windows.Handle) (string, error) {
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return "", err
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return "", err
	}
	return tu.User.Sid.String(), nil
}

// currentSID is the user SID of the daemon's own token: a peer's must be
// the same.
func currentSID() (string, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return "", fmt.Errorf("read the daemon's user: %w", err)
	}
	return tu.User.Sid.String(), nil
}

// peerPin holds the connecting process by a handle while it is identified.
type peerPin struct{ h windows.Handle }

var noPin = peerPin{}

// exact reports false: the handle was taken after the accept, by pid, not
// by the system at connect time as Linux's pidfd is, so identify still
// compares creation times.
func (peerPin) exact() bool { return false }

// alive reports whether the pinned process is still running; true when
// there is no pin.
func (p peerPin) alive() bool {
	if p.h == 0 {
		return true
	}
	ev, err := windows.WaitForSingleObject(p.h, 0)
	return err == nil && ev == uint32(windows.WAIT_TIMEOUT)
}

func (p peerPin) release() {
	if p.h != 0 {
		windows.CloseHandle(p.h)
	}
}

// peerSocketInode: a pipe has no inode to look for among a process's
// handles, and there is nothing to confirm (see fdScans); 0 is "not
// checked".
func peerSocketInode(net.Conn) (uint32, error) { return 0, nil }

// fdScans would check, at a connection's first request, that the process
// identified still holds it. Windows needs no such check for what Linux
// uses it for: a process cannot run another program in its place (there
// is no exec: its image is the one it was created with, for life), so the
// pipe's client process is judged by the program it has always been. A
// pipe handle reaches another process only if its client lets it: by
// marking it inheritable before creating a child (opx's client does not:
// Go opens every handle non-inheritable and passes a child only its
// standard streams), or with DuplicateHandle; the client's own program
// then gives its access away, as it could give away a secret it read. The
// check left is confirm's: the process still runs, with the creation time
// identified (a pid reused after the client exited is refused).
type fdScans struct{}

func newFDScans() *fdScans { return &fdScans{} }

func (*fdScans) check(int, uint32, int) error { return nil }

// sameNamespaces: Windows processes of one user share one view of the
// file system (drive letters aside, which the image path does not use: it
// is the volume's path).
func sameNamespaces(int) error { return nil }

// sameExecutable reports whether path, a process's image, is this program
// (self): the same name as Windows compares names, or the same file (a
// hard link, another spelling of the path).
func sameExecutable(path, self string) bool {
	if policy.SamePath(path, self) {
		return true
	}
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	b, err := os.Stat(self)
	return err == nil && os.SameFile(a, b)
}

// openExe opens the executable at process pid's image path. Windows keeps
// a running image from being written or deleted, but not from being
// renamed, so the file at that path is the image unless someone who may
// rename files in its directory moved it and put another in its place
// (docs/security.md).
func openExe(pid int) (*os.File, error) {
	d, err := policy.ReadProcess(pid)
	if err != nil {
		return nil, err
	}
	return os.Open(filepath.Clean(d.Path))
}
