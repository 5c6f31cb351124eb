package masked

import (
	"os"
	"os/signal"
	"syscall"
)

// havePTY reports whether the command can get a pseudo-terminal: not on
// Windows. Its pseudo consoles are another thing (inPseudoConsole, in
// conpty_windows.go); without one the command's output goes through pipes,
// as on Unix when opx's output is not a terminal.
const havePTY = false

// textModeCRLF reports whether programs may write "\n" as "\r\n" to a pipe:
// on Windows, the C runtime's text mode does.
const textModeCRLF = true

// notifySignals catches Ctrl-C and Ctrl-Break (os.Interrupt) and the
// console's closing (SIGTERM) until stop is called, so that opx outlives
// them: the console gives them to every process attached to it in the
// group, the command included, and opx waits for it to end as it chooses
// and returns its status. A command in a pseudo console is attached to
// that one: opx passes them on (waitIn).
func notifySignals() (sigs chan os.Signal, stop func()) {
	sigs = make(chan os.Signal, 8)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return sigs, func() { signal.Stop(sigs) }
}

// prepare leaves the command in opx's console and process group: a process
// group of its own (CREATE_NEW_PROCESS_GROUP) would turn off its Ctrl-C,
// and GenerateConsoleCtrlEvent can send a group only Ctrl-Break, which most
// programs take as a harder stop than Ctrl-C.
func (r *run) prepare() error { return nil }

// started has nothing to hand over: a command that runs through pipes has
// no pseudo console.
func (r *run) started() (restore func()) { return func() {} }

// forward does nothing: the console has given the command the same Ctrl-C,
// Ctrl-Break or close that opx got, and a second one from opx would be
// another keypress.
func (r *run) forward(os.Signal) {}
