package client

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

// MinConcealLen is the shortest value opx run conceals in the command's
// output: a shorter one ("1", "on", "8080") would garble ordinary numbers
// and words, and is too short to be much of a secret. opx run warns about
// each variable it leaves visible.
const MinConcealLen = 6

// drainTime bounds how long the output is read after the command exits:
// a process it left behind may hold the output open.
const drainTime = time.Second

// forwarded are the signals opx run passes to the command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// runMasked runs the command with its output passed through opx, every
// value replaced by mask.Marker, and returns its exit status: its own, or
// 128+N when signal N ended it.
//
// Standard streams that are terminals for opx are terminals for the
// command too: it gets one pseudo-terminal for all of them (window size
// kept in step, the real terminal in raw mode so keys pass through, and
// its own session with the pseudo-terminal as its controlling terminal).
// Streams that are not terminals are pipes (stdin is passed as it is).
// On a terminal, stdout and stderr share the pseudo-terminal, as they
// share the real one.
func runMasked(path string, argv, environ []string, values [][]byte, stdin, stdout, stderr *os.File) (int, error) {
	isTTY := [3]bool{
		term.IsTerminal(int(stdin.Fd())),
		term.IsTerminal(int(stdout.Fd())),
		term.IsTerminal(int(stderr.Fd())),
	}
	usePTY := isTTY[0] || isTTY[1] || isTTY[2]
	if usePTY {
		// The terminal turns "\n" into "\r\n": conceal that form too.
		for _, v := range values {
			if bytes.IndexByte(v, '\n') >= 0 {
				values = append(values, bytes.ReplaceAll(v, []byte("\n"), []byte("\r\n")))
			}
		}
	}
	m := mask.NewMatcher(values)
	outW, errW := mask.NewWriter(m, stdout), mask.NewWriter(m, stderr)

	cmd := &exec.Cmd{Path: path, Args: argv, Env: environ, Stdin: stdin, WaitDelay: drainTime}
	var master, slave *os.File
	var ttyOut *mask.Writer // where the pseudo-terminal's output goes
	if usePTY {
		var err error
		if master, slave, err = pty.Open(); err != nil {
			return 1, fmt.Errorf("open a pseudo-terminal: %w", err)
		}
		defer master.Close()
		real := stdin // the terminal whose settings and size the command gets
		switch {
		case isTTY[1]:
			real, ttyOut = stdout, outW
		case isTTY[2]:
			real, ttyOut = stderr, errW
		default:
			// Only stdin is a terminal: what the command writes to its
			// terminal (the echo of what is typed, prompts) goes to the
			// real one, as it would without opx.
			if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
				defer tty.Close()
				ttyOut = mask.NewWriter(m, tty)
				defer ttyOut.Close()
			} else {
				ttyOut = errW
			}
		}
		// The command's terminal starts with the settings of the real one.
		if t, err := unix.IoctlGetTermios(int(real.Fd()), ioctlGetTermios); err == nil {
			unix.IoctlSetTermios(int(slave.Fd()), ioctlSetTermios, t)
		}
		pty.InheritSize(real, master)
		ctty := 2
		if isTTY[0] {
			cmd.Stdin, ctty = slave, 0
		}
		if isTTY[1] {
			cmd.Stdout, ctty = slave, min(ctty, 1)
		}
		if isTTY[2] {
			cmd.Stderr = slave
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: ctty}
	} else {
		// Its own process group: a signal to opx's group reaches the
		// command once, through opx.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if cmd.Stdout == nil {
		cmd.Stdout = outW
	}
	if cmd.Stderr == nil {
		cmd.Stderr = errW
	}

	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		if slave != nil {
			slave.Close()
		}
		return startFailure(err), err
	}
	var ptyDone chan struct{}
	if usePTY {
		slave.Close()
		if isTTY[0] {
			// Keys pass through as they are; the command's terminal
			// does what the real one would have done with them.
			if old, err := term.MakeRaw(int(stdin.Fd())); err == nil {
				var mu sync.Mutex
				defer func() {
					mu.Lock()
					term.Restore(int(stdin.Fd()), old)
					mu.Unlock()
				}()
				suspend := func() {
					mu.Lock()
					defer mu.Unlock()
					pgrp, err := unix.IoctlGetInt(int(master.Fd()), ioctlGetPgrp)
					if err != nil || pgrp <= 0 {
						pgrp = cmd.Process.Pid
					}
					syscall.Kill(-pgrp, syscall.SIGSTOP)
					term.Restore(int(stdin.Fd()), old)
					// Stopped here until the shell continues opx (fg, bg).
					syscall.Kill(os.Getpid(), syscall.SIGTSTP)
					if o, err := term.MakeRaw(int(stdin.Fd())); err == nil {
						old = o
					}
					pty.InheritSize(stdin, master)
					syscall.Kill(-pgrp, syscall.SIGCONT)
				}
				go forwardKeys(master, stdin, suspend)
			} else {
				go io.Copy(master, stdin)
			}
		} else if out := ttyOutFile(isTTY, stdout, stderr); out != nil {
			// The command's terminal already turned "\n" into "\r\n":
			// the real one must not do it again.
			if t, err := unix.IoctlGetTermios(int(out.Fd()), ioctlGetTermios); err == nil {
				saved := *t
				t.Oflag &^= unix.OPOST
				if unix.IoctlSetTermios(int(out.Fd()), ioctlSetTermios, t) == nil {
					defer unix.IoctlSetTermios(int(out.Fd()), ioctlSetTermios, &saved)
				}
			}
		}
		ptyDone = make(chan struct{})
		go func() {
			defer close(ptyDone)
			io.Copy(ttyOut, master) // ends with EIO when every holder of the other side is gone
		}()
	}

	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	forward := func(sig os.Signal) {
		if sig == syscall.SIGWINCH && usePTY {
			// Resizing the pseudo-terminal signals its foreground group.
			real := stdout
			if !isTTY[1] {
				real = stderr
			}
			if !isTTY[1] && !isTTY[2] {
				real = stdin
			}
			pty.InheritSize(real, master)
			return
		}
		cmd.Process.Signal(sig)
	}
loop:
	for {
		select {
		case sig := <-sigs:
			forward(sig)
		case <-exited:
			break loop
		}
	}
	if ptyDone != nil {
		select {
		case <-ptyDone:
		case <-time.After(drainTime):
		}
	}
	outW.Close()
	errW.Close()

	var exit *exec.ExitError
	switch {
	case waitErr == nil:
		return 0, nil
	case errors.As(waitErr, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	case errors.Is(waitErr, exec.ErrWaitDelay):
		return cmd.ProcessState.ExitCode(), nil
	default:
		return 1, waitErr
	}
}

// forwardKeys copies what is typed to the command's terminal. The
// suspend character (Ctrl-Z), when that terminal makes signals of keys,
// calls suspend instead: the command runs in a session of its own, where
// the terminal's own SIGTSTP would be discarded (its process group has no
// parent in its session), so opx stops it and then itself, and the shell's
// job control works as it would without opx.
func forwardKeys(master, stdin *os.File, suspend func()) {
	buf := make([]byte, 4096)
	for {
		n, err := stdin.Read(buf)
		p := buf[:n]
		for len(p) > 0 {
			t, terr := unix.IoctlGetTermios(int(master.Fd()), ioctlGetTermios)
			i := -1
			if terr == nil && t.Lflag&unix.ISIG != 0 && t.Cc[unix.VSUSP] != 0 {
				i = bytes.IndexByte(p, t.Cc[unix.VSUSP])
			}
			if i < 0 {
				if _, werr := master.Write(p); werr != nil {
					return
				}
				break
			}
			if _, werr := master.Write(p[:i]); werr != nil {
				return
			}
			suspend()
			p = p[i+1:]
		}
		if err != nil {
			return
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

// startFailure is the shell's status for a command that could not start:
// 127 when there is no such program, 126 when it cannot be run.
func startFailure(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return 127
	}
	return 126
}
