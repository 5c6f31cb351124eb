// Package masked runs the command of opx run with secret values concealed
// in what it prints: under a pseudo-terminal when opx's streams are
// terminals (on Unix), in a pseudo console when opx's stdout is a console
// (on Windows, where it has them), through pipes otherwise, with signals
// passed on.
package masked

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"time"

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

// Command is what Run runs, and what it conceals.
type Command struct {
	Path string   // the program
	Args []string // its argument list, the program's name first
	Env  []string // its environment
	// Values are the secrets to conceal; each is replaced by Marker, or by
	// mask.Marker when Marker is "".
	Values [][]byte
	Marker string
	// Stdin, Stdout and Stderr are opx's own streams.
	Stdin, Stdout, Stderr *os.File
	// Warn, when not nil, is told in a sentence what Run could not do
	// as it meant to and worked around (on Windows: a pseudo console it
	// could not create).
	Warn func(msg string)
}

// Run runs the command with its output passed through opx, every value
// replaced by the marker, and returns its exit status: its own, or 128+N
// when signal N ended it.
//
// Standard streams that are terminals for opx are terminals for the
// command too: it gets one pseudo-terminal for all of them (window size
// kept in step, the real terminal in raw mode so keys pass through, and
// its own session with the pseudo-terminal as its controlling terminal).
// Streams that are not terminals are pipes (stdin is passed as it is).
// On a terminal, stdout and stderr share the pseudo-terminal, as they
// share the real one.
//
// On Windows, when opx's stdout is a console and Windows has pseudo
// consoles, the command runs in a pseudo console of its own, opx's console
// in raw mode so that keys (Ctrl-C among them) pass through
// (conpty_windows.go). Otherwise its stdout and stderr are pipes (a
// console program sees no console on them), and it shares opx's console
// and process group, so the console gives it Ctrl-C and Ctrl-Break itself
// while opx outlives them to return its status (run_windows.go).
func Run(c Command) (int, error) {
	r := newRun(c)
	defer r.close()
	if ran, code, err := r.inPseudoConsole(); ran {
		return code, err
	}
	if err := r.prepare(); err != nil {
		return 1, err
	}
	if r.cmd.Stdout == nil {
		r.cmd.Stdout = r.outW
	}
	if r.cmd.Stderr == nil {
		r.cmd.Stderr = r.errW
	}

	sigs, stop := notifySignals()
	defer stop()
	if err := r.cmd.Start(); err != nil {
		return StartStatus(err), err
	}
	defer r.started()()
	waitErr := r.wait(sigs)
	r.drain()
	return exitStatus(r.cmd, waitErr)
}

// run is one Run: the command, its streams and, on a terminal, its
// pseudo-terminal.
type run struct {
	c          Command
	cmd        *exec.Cmd
	isTTY      [3]bool // whether opx's stdin, stdout and stderr are terminals
	usePTY     bool
	m          *mask.Matcher
	outW, errW *mask.Writer
	// On a terminal: the pseudo-terminal's two sides, where its output
	// goes, and what closes at the end.
	master, slave *os.File
	ttyOut        *mask.Writer
	ptyDone       chan struct{}
	closers       []io.Closer
}

func newRun(c Command) *run {
	r := &run{c: c}
	r.isTTY = [3]bool{
		term.IsTerminal(int(c.Stdin.Fd())),
		term.IsTerminal(int(c.Stdout.Fd())),
		term.IsTerminal(int(c.Stderr.Fd())),
	}
	r.usePTY = havePTY && (r.isTTY[0] || r.isTTY[1] || r.isTTY[2])
	values := c.Values
	if r.usePTY || textModeCRLF {
		// The terminal turns "\n" into "\r\n", as the C runtime's text
		// mode does on Windows: conceal that form too.
		for _, v := range c.Values {
			if bytes.IndexByte(v, '\n') >= 0 {
				values = append(values, bytes.ReplaceAll(v, []byte("\n"), []byte("\r\n")))
			}
		}
	}
	r.m = mask.NewMatcher(values)
	if c.Marker != "" {
		r.m.SetMarker(c.Marker)
	}
	r.outW, r.errW = mask.NewWriter(r.m, c.Stdout), mask.NewWriter(r.m, c.Stderr)
	r.cmd = &exec.Cmd{Path: c.Path, Args: c.Args, Env: c.Env, Stdin: c.Stdin, WaitDelay: drainTime}
	return r
}

// wait forwards the signals opx gets to the command until it exits, and
// returns what cmd.Wait did.
func (r *run) wait(sigs <-chan os.Signal) error {
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			r.forward(sig)
		case err := <-exited:
			return err
		}
	}
}

// drain waits, at most drainTime, for the rest of the pseudo-terminal's
// output, and flushes what the writers hold back.
func (r *run) drain() {
	if r.ptyDone != nil {
		select {
		case <-r.ptyDone:
		case <-time.After(drainTime):
		}
	}
	r.outW.Close()
	r.errW.Close()
}

// close closes what the run opened, last first.
func (r *run) close() {
	for _, c := range slices.Backward(r.closers) {
		c.Close()
	}
}

// exitStatus is the command's exit status as a shell reports it.
func exitStatus(cmd *exec.Cmd, waitErr error) (int, error) {
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

// StartStatus is the shell's status for a command that could not start:
// 127 when there is no such program, 126 when it cannot be run.
func StartStatus(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return 127
	}
	return 126
}
