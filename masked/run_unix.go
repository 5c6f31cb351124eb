//go:build unix

package masked

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/opxhq/opx/mask"
)

// havePTY reports whether the command can get a pseudo-terminal: always.
const havePTY = true

// textModeCRLF reports whether programs may write "\n" as "\r\n" to a pipe:
// not here.
const textModeCRLF = false

// forwarded are the signals opx run passes to the command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// notifySignals catches the signals opx passes on, and SIGPIPE, until stop
// is called. A reader that went away (opx run ... | head) makes writes
// fail with EPIPE instead of killing opx with the terminal still raw; the
// command then gets its own SIGPIPE, or hang-up, when it writes on.
func notifySignals() (sigs chan os.Signal, stop func()) {
	sigs = make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	pipes := make(chan os.Signal, 1)
	signal.Notify(pipes, syscall.SIGPIPE)
	return sigs, func() {
		signal.Stop(pipes)
		signal.Stop(sigs)
	}
}

// prepare gives the command a pseudo-terminal when opx has a terminal, or
// else its own process group: a signal to opx's group reaches the command
// once, through opx.
func (r *run) prepare() error {
	if r.usePTY {
		return r.openPTY()
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return nil
}

// inPseudoConsole reports false: Unix has no pseudo consoles (its
// pseudo-terminals are prepare's and started's).
func (r *run) inPseudoConsole() (ran bool, code int, err error) { return false, 0, nil }

// started, once the command runs, hands it the terminal (copyTerminal), and
// returns what gives it back.
func (r *run) started() (restore func()) {
	if r.usePTY {
		return r.copyTerminal()
	}
	return func() {}
}

// openPTY gives the command a pseudo-terminal for the streams that are
// terminals for opx, with the settings and size of the real terminal.
func (r *run) openPTY() error {
	var err error
	if r.master, r.slave, err = pty.Open(); err != nil {
		return fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	r.closers = append(r.closers, r.master, r.slave)
	real := r.c.Stdin // the terminal whose settings and size the command gets
	switch {
	case r.isTTY[1]:
		real, r.ttyOut = r.c.Stdout, r.outW
	case r.isTTY[2]:
		real, r.ttyOut = r.c.Stderr, r.errW
	default:
		// Only stdin is a terminal: what the command writes to its
		// terminal (the echo of what is typed, prompts) goes to the
		// real one, as it would without opx.
		r.ttyOut = r.errW
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			r.ttyOut = mask.NewWriter(r.m, tty)
			r.closers = append(r.closers, tty, r.ttyOut) // closed last to first
		}
	}
	// The command's terminal starts with the settings of the real one.
	if t, err := unix.IoctlGetTermios(int(real.Fd()), ioctlGetTermios); err == nil {
		unix.IoctlSetTermios(int(r.slave.Fd()), ioctlSetTermios, t)
	}
	pty.InheritSize(real, r.master)
	ctty := 2
	if r.isTTY[0] {
		r.cmd.Stdin, ctty = r.slave, 0
	}
	if r.isTTY[1] {
		r.cmd.Stdout, ctty = r.slave, min(ctty, 1)
	}
	if r.isTTY[2] {
		r.cmd.Stderr = r.slave
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: ctty}
	return nil
}

// copyTerminal, once the command started, lets go of opx's copy of the
// command's side, gives the real terminal to the pseudo-terminal and copies
// what the command writes there out, concealed. It returns what gives the
// real terminal back.
func (r *run) copyTerminal() (restore func()) {
	r.slave.Close()
	restore = takeTerminal(r.cmd, r.master, r.c.Stdin, r.isTTY, ttyOutFile(r.isTTY, r.c.Stdout, r.c.Stderr))
	r.ptyDone = make(chan struct{})
	go func() {
		defer close(r.ptyDone)
		// Ends with EIO when every holder of the other side is gone,
		// or when the real terminal cannot be written: then the
		// command's terminal hangs up, as the real one did.
		if _, err := io.Copy(r.ttyOut, r.master); err != nil && !isEIO(err) {
			r.master.Close()
		}
	}()
	return restore
}

// forward passes sig on: a window size change to the pseudo-terminal
// (which signals its foreground group), any other signal to the command's
// process group, as a terminal sends Ctrl-C: what the command started gets
// it too.
func (r *run) forward(sig os.Signal) {
	if sig == syscall.SIGWINCH && r.usePTY {
		real := r.c.Stdout
		if !r.isTTY[1] {
			real = r.c.Stderr
		}
		if !r.isTTY[1] && !r.isTTY[2] {
			real = r.c.Stdin
		}
		pty.InheritSize(real, r.master)
		return
	}
	if syscall.Kill(-r.cmd.Process.Pid, sig.(syscall.Signal)) != nil {
		r.cmd.Process.Signal(sig)
	}
}

// takeTerminal gives the real terminal to the command's pseudo-terminal
// and returns what gives it back. The keyboard is opx's stdin when that is
// a terminal, else the controlling terminal (/dev/tty), so that a command
// whose stdin is a pipe can still ask for a password on its terminal.
// While opx runs in the foreground, the keyboard is in raw mode and keys go
// to the command's terminal; in the background (opx run ... &) opx leaves
// the terminal alone, as touching it would stop opx (SIGTTOU, SIGTTIN).
func takeTerminal(cmd *exec.Cmd, master, stdin *os.File, isTTY [3]bool, out *os.File) (restore func()) {
	keyboard := stdin
	closeKeyboard := func() {}
	if !isTTY[0] {
		keyboard = nil
		if tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0); err == nil {
			keyboard, closeKeyboard = tty, func() { tty.Close() }
		}
	}
	if keyboard == nil || !foreground(keyboard) {
		closeKeyboard()
		if out != nil && foreground(out) {
			// The command's terminal already turned "\n" into "\r\n":
			// the real one must not do it again.
			if t, err := unix.IoctlGetTermios(int(out.Fd()), ioctlGetTermios); err == nil {
				saved := *t
				t.Oflag &^= unix.OPOST
				if unix.IoctlSetTermios(int(out.Fd()), ioctlSetTermios, t) == nil {
					return func() { unix.IoctlSetTermios(int(out.Fd()), ioctlSetTermios, &saved) }
				}
			}
		}
		return func() {}
	}
	old, err := term.MakeRaw(int(keyboard.Fd()))
	if err != nil {
		closeKeyboard()
		return func() {}
	}
	var mu sync.Mutex
	done := false
	suspend := func() {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		pgrp, err := unix.IoctlGetInt(int(master.Fd()), ioctlGetPgrp)
		if err != nil || pgrp <= 0 {
			return
		}
		syscall.Kill(-pgrp, syscall.SIGSTOP)
		term.Restore(int(keyboard.Fd()), old)
		// Stop until the shell continues opx (fg, bg). The signal may
		// stop opx from another thread, a moment after this call
		// returns: wait for the SIGCONT. When the stop is discarded (a
		// process group with no shell to continue it), go on shortly.
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		syscall.Kill(os.Getpid(), syscall.SIGTSTP)
		select {
		case <-cont:
		case <-time.After(500 * time.Millisecond):
		}
		signal.Stop(cont)
		if foreground(keyboard) {
			if o, err := term.MakeRaw(int(keyboard.Fd())); err == nil {
				old = o
			}
		}
		pty.InheritSize(keyboard, master)
		syscall.Kill(-pgrp, syscall.SIGCONT)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		forwardKeys(master, keyboard, suspend, stop)
	}()
	return func() {
		close(stop)
		<-stopped // before the caller closes master
		mu.Lock()
		defer mu.Unlock()
		done = true
		term.Restore(int(keyboard.Fd()), old)
		closeKeyboard()
	}
}

// foreground reports whether opx's process group is the foreground one of
// the terminal f.
func foreground(f *os.File) bool {
	pgrp, err := unix.IoctlGetInt(int(f.Fd()), ioctlGetPgrp)
	return err == nil && pgrp == unix.Getpgrp()
}

// isEIO reports whether err is the EIO a pseudo-terminal's master reads
// once the other side is closed.
func isEIO(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Err == syscall.EIO
}

// forwardKeys copies what is typed to the command's terminal until stop
// is closed. The suspend character (Ctrl-Z), when that terminal makes
// signals of keys, calls suspend instead: the command runs in a session of
// its own, where the terminal's own SIGTSTP would be discarded (its process
// group has no parent in its session), so opx stops it and then itself,
// and the shell's job control works as it would without opx. It reads only
// when a key is waiting, so that it stops without taking keys meant for
// the shell once the command has ended.
func forwardKeys(master, keyboard *os.File, suspend func(), stop <-chan struct{}) {
	kfd, mfd := int(keyboard.Fd()), int(master.Fd())
	buf := make([]byte, 4096)
	write := func(p []byte) bool {
		for len(p) > 0 {
			n, err := unix.Write(mfd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return false
			}
			p = p[n:]
		}
		return true
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		ready, err := unix.Poll([]unix.PollFd{{Fd: int32(kfd), Events: unix.POLLIN}}, 50)
		if err == unix.EINTR || err == nil && ready == 0 {
			continue
		}
		if err != nil {
			return
		}
		n, err := unix.Read(kfd, buf)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		p := buf[:n]
		for len(p) > 0 {
			t, terr := unix.IoctlGetTermios(mfd, ioctlGetTermios)
			i := -1
			if terr == nil && t.Lflag&unix.ISIG != 0 && t.Cc[unix.VSUSP] != vdisable {
				i = bytes.IndexByte(p, t.Cc[unix.VSUSP])
			}
			if i < 0 {
				if !write(p) {
					return
				}
				break
			}
			if !write(p[:i]) {
				return
			}
			suspend()
			p = p[i+1:]
		}
	}
}

// ttyOutFile is the real terminal the pseudo-terminal's output goes to,
// when that is stdout or stderr.
func ttyOutFile(isTTY [3]bool, stdout, stderr *os.File) *os.File {
	switch {
	case isTTY[1]:
		return stdout
	case isTTY[2]:
		return stderr
	}
	return nil
}
