package masked

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf16"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/mask"
)

// A command whose output is a console for opx runs in a pseudo console
// (ConPTY, Windows 10 1809 and later) of its own, sized like opx's console
// window: opx paints what the pseudo console sends (text and VT sequences)
// on its console, concealed, and passes the keys typed there on to it.
//
// The pseudo console is the command's stdout, and its stderr and stdin when
// those are opx's console too; a redirected stderr is a pipe, concealed as
// without a pseudo console, and a redirected stdin is passed as it is.

// resizeEvery is how often opx looks at its console window's size: Windows
// tells a program of a new size only through its console input, which opx
// does not read when its stdin is not the console.
const resizeEvery = 250 * time.Millisecond

// quietTime is how long the pseudo console's output must have been quiet,
// after the command exits, before opx closes it: the console paints the
// command's last output a moment after it was written (in frames, about 60
// a second), and closing it while it paints may lose that frame.
const quietTime = 100 * time.Millisecond

var (
	kernel32              = windows.NewLazySystemDLL("kernel32.dll")
	procCreatePseudoCons  = kernel32.NewProc("CreatePseudoConsole")
	procResizePseudoCons  = kernel32.NewProc("ResizePseudoConsole")
	procClosePseudoCons   = kernel32.NewProc("ClosePseudoConsole")
	procReadConsoleInputW = kernel32.NewProc("ReadConsoleInputW")
)

// havePseudoConsole reports whether Windows has pseudo consoles. The
// x/sys/windows calls panic where it has not.
func havePseudoConsole() bool {
	return procCreatePseudoCons.Find() == nil && procResizePseudoCons.Find() == nil &&
		procClosePseudoCons.Find() == nil
}

// inPseudoConsole runs the command in a pseudo console when opx's stdout is
// a console and Windows has pseudo consoles, and reports whether it did.
// When it could not create one, it says so through Warn and reports false:
// the pipes conceal too.
func (r *run) inPseudoConsole() (ran bool, code int, err error) {
	if !isConsole(r.c.Stdout) || !havePseudoConsole() {
		return false, 0, nil
	}
	size, ok := windowSize(handle(r.c.Stdout))
	if !ok {
		size = windows.Coord{X: 80, Y: 25}
	}
	pc, err := newPseudoConsole(size)
	if err != nil {
		if r.c.Warn != nil {
			r.c.Warn(fmt.Sprintf("no pseudo console for the command (%v): its output goes through pipes, and it sees no console on it", err))
		}
		return false, 0, nil
	}
	code, err = r.runIn(pc, size)
	return true, code, err
}

// runIn starts the command in pc, runs it to its end and closes pc.
func (r *run) runIn(pc *pseudoConsole, size windows.Coord) (int, error) {
	defer setMode(handle(r.c.Stdout), windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING, 0)()
	out := mask.NewTerminalWriter(r.m, r.c.Stdout)
	// Read from the start: the pseudo console may paint before the
	// command runs, and closing it waits while its output is unread.
	painted := &stamp{w: out}
	done := []chan struct{}{copyOut(painted, pc.out)}
	defer func() {
		r.finish(pc, painted, done)
		out.Close()
	}()

	// From before the start, as through pipes: a Ctrl-C must not end opx
	// while the command runs.
	sigs, stopSignals := notifySignals()
	defer stopSignals()

	var stdin, stderr windows.Handle // 0: the pseudo console
	keys := isConsole(r.c.Stdin)
	if !keys {
		stdin = inheritable(handle(r.c.Stdin))
		defer windows.CloseHandle(stdin)
	}
	if !isConsole(r.c.Stderr) {
		var errR windows.Handle
		if err := windows.CreatePipe(&errR, &stderr, nil, 0); err != nil {
			return 1, fmt.Errorf("pipe for stderr: %w", err)
		}
		windows.SetHandleInformation(stderr, windows.HANDLE_FLAG_INHERIT, windows.HANDLE_FLAG_INHERIT)
		done = append(done, copyOut(r.errW, os.NewFile(uintptr(errR), "stderr")))
	}
	err := pc.start(r.c, stdin, stderr)
	if stderr != 0 {
		windows.CloseHandle(stderr) // the command's copy is the only writer now
	}
	if err != nil {
		return StartStatus(err), err
	}
	defer windows.CloseHandle(pc.process)

	resized := make(chan struct{}, 1)
	stop := make(chan struct{})
	var background sync.WaitGroup
	restoreKeys := func() {}
	if keys {
		restoreKeys = setMode(handle(r.c.Stdin), windows.ENABLE_VIRTUAL_TERMINAL_INPUT|windows.ENABLE_WINDOW_INPUT,
			windows.ENABLE_PROCESSED_INPUT|windows.ENABLE_LINE_INPUT|windows.ENABLE_ECHO_INPUT)
		background.Go(func() { forwardKeys(handle(r.c.Stdin), pc.in, resized, stop) })
	}
	background.Go(func() { followSize(pc, handle(r.c.Stdout), size, resized, stop) })
	code := waitIn(pc, sigs)
	close(stop)
	background.Wait()
	restoreKeys()
	return code, nil
}

// finish, once the command has exited, waits for pc's output (painted) to
// be quiet for quietTime, then closes pc while what copies its output (and
// the command's stderr) reads on, and waits for them, at most drainTime
// each: the pseudo console keeps its output open until it is closed, and
// closing it waits while its last frame is unread (Windows'
// ClosePseudoConsole does; wine's waits for its console host, which waits
// to write). Then it flushes what the writers hold back.
func (r *run) finish(pc *pseudoConsole, painted *stamp, done []chan struct{}) {
	painted.waitQuiet(quietTime, drainTime)
	closed := make(chan struct{})
	go func() {
		pc.Close()
		close(closed)
	}()
	for _, c := range append(done, closed) {
		select {
		case <-c:
		case <-time.After(drainTime):
		}
	}
	r.outW.Close()
	r.errW.Close()
}

// waitIn waits for the command to exit, passing on the signals opx gets
// meanwhile (sigs), and returns its exit status.
//
// In raw input mode Ctrl-C is a key, which the pseudo console turns into
// the command's Ctrl-C. What still reaches opx as an interrupt is
// Ctrl-Break (raw mode does not turn it off), or Ctrl-C when opx's stdin is
// not the console: the command is in a console of its own, so opx passes
// the first to it as Ctrl-C, and ends it at the second (exit status
// STATUS_CONTROL_C_EXIT, as when Ctrl-Break ends a program that has no
// handler for it). The closing of opx's console closes the command's.
func waitIn(pc *pseudoConsole, sigs <-chan os.Signal) int {
	exited := make(chan struct{})
	go func() {
		windows.WaitForSingleObject(pc.process, windows.INFINITE)
		close(exited)
	}()
	interrupts := 0
	for {
		select {
		case sig := <-sigs:
			switch {
			case sig != os.Interrupt:
				go pc.Close()
			case interrupts == 0:
				go pc.in.Write([]byte{0x03})
			default:
				windows.TerminateProcess(pc.process, uint32(windows.STATUS_CONTROL_C_EXIT))
			}
			if sig == os.Interrupt {
				interrupts++
			}
		case <-exited:
			var code uint32
			if windows.GetExitCodeProcess(pc.process, &code) != nil {
				return 1
			}
			return int(code)
		}
	}
}

// pseudoConsole is a pseudo console and the command that runs in it.
type pseudoConsole struct {
	hpc     windows.Handle
	in      *os.File       // the console's input: what opx writes there is typed
	out     *os.File       // the console's output: text and VT sequences
	process windows.Handle // the command, once started; its starter closes it
	once    sync.Once
}

// newPseudoConsole creates a pseudo console of the given size, its input
// and output on two pipes.
func newPseudoConsole(size windows.Coord) (*pseudoConsole, error) {
	var inR, inW, outR, outW windows.Handle
	if err := windows.CreatePipe(&inR, &inW, nil, 0); err != nil {
		return nil, err
	}
	if err := windows.CreatePipe(&outR, &outW, nil, 0); err != nil {
		windows.CloseHandle(inR)
		windows.CloseHandle(inW)
		return nil, err
	}
	var hpc windows.Handle
	err := windows.CreatePseudoConsole(size, inR, outW, 0, &hpc)
	// The console host has its own copies of its ends.
	windows.CloseHandle(inR)
	windows.CloseHandle(outW)
	if err != nil {
		windows.CloseHandle(inW)
		windows.CloseHandle(outR)
		return nil, err
	}
	return &pseudoConsole{hpc: hpc, in: os.NewFile(uintptr(inW), "console input"),
		out: os.NewFile(uintptr(outR), "console output")}, nil
}

// start starts the command in the pseudo console: os/exec cannot attach
// one. Its stdout, and its stdin and stderr where they are 0, are the
// console's: a standard handle that is NULL in a program attached to a
// pseudo console is connected to it (Windows; wine 8 leaves it NULL).
// Other handles are inherited, and only they.
func (pc *pseudoConsole) start(c Command, stdin, stderr windows.Handle) error {
	attrs, err := windows.NewProcThreadAttributeList(2)
	if err != nil {
		return err
	}
	defer attrs.Delete()
	// The attribute's value is the HPCON itself, not a pointer to it.
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, *(*unsafe.Pointer)(unsafe.Pointer(&pc.hpc)), unsafe.Sizeof(pc.hpc)); err != nil {
		return err
	}
	var inherit []windows.Handle
	for _, h := range []windows.Handle{stdin, stderr} {
		if h != 0 && !slices.Contains(inherit, h) {
			inherit = append(inherit, h)
		}
	}
	if len(inherit) > 0 {
		if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_HANDLE_LIST, unsafe.Pointer(&inherit[0]), uintptr(len(inherit))*unsafe.Sizeof(inherit[0])); err != nil {
			return err
		}
	}
	si := windows.StartupInfoEx{ProcThreadAttributeList: attrs.List()}
	si.Cb = uint32(unsafe.Sizeof(si))
	si.Flags = windows.STARTF_USESTDHANDLES
	si.StdInput, si.StdErr = stdin, stderr

	path, err := windows.UTF16PtrFromString(c.Path)
	if err != nil {
		return err
	}
	cmdline, err := windows.UTF16PtrFromString(commandLine(c.Args))
	if err != nil {
		return err
	}
	env, err := environmentBlock(c.Env)
	if err != nil {
		return err
	}
	defer clear(env) // it holds the values
	var envp *uint16
	if env != nil {
		envp = &env[0]
	}
	var pi windows.ProcessInformation
	err = windows.CreateProcess(path, cmdline, nil, nil, len(inherit) > 0,
		windows.EXTENDED_STARTUPINFO_PRESENT|windows.CREATE_UNICODE_ENVIRONMENT, envp, nil, &si.StartupInfo, &pi)
	if err != nil {
		return &os.PathError{Op: "start", Path: c.Path, Err: err}
	}
	windows.CloseHandle(pi.Thread)
	pc.process = pi.Process
	return nil
}

// Close closes the pseudo console, which ends what still runs in it, and
// the pipes. It waits while the console's last output is unread (Windows'
// ClosePseudoConsole does, and wine's waits for its console host to exit),
// so the output is read meanwhile.
func (pc *pseudoConsole) Close() error {
	pc.once.Do(func() {
		windows.ClosePseudoConsole(pc.hpc)
		pc.in.Close()
		pc.out.Close()
	})
	return nil
}

// stamp is a writer that notes when it was last written to.
type stamp struct {
	w    io.Writer
	last atomic.Int64 // UnixNano
}

func (s *stamp) Write(p []byte) (int, error) {
	s.last.Store(time.Now().UnixNano())
	return s.w.Write(p)
}

// waitQuiet waits until nothing was written for quiet, or for at most
// limit.
func (s *stamp) waitQuiet(quiet, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		since := time.Since(time.Unix(0, s.last.Load()))
		if since >= quiet {
			return
		}
		time.Sleep(quiet - since)
	}
}

// copyOut copies from until it ends, closes it, and returns what is closed
// then.
func copyOut(to io.Writer, from *os.File) chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(to, from)
		from.Close()
	}()
	return done
}

// followSize keeps the pseudo console the size of opx's console window, on
// a window size event from the keyboard's console (resized) and every
// resizeEvery, until stop is closed.
func followSize(pc *pseudoConsole, console windows.Handle, size windows.Coord, resized <-chan struct{}, stop <-chan struct{}) {
	tick := time.NewTicker(resizeEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		case <-resized:
		}
		if now, ok := windowSize(console); ok && now != size {
			if windows.ResizePseudoConsole(pc.hpc, now) == nil {
				size = now
			}
		}
	}
}

// inputRecord is INPUT_RECORD, and keyEvent the KEY_EVENT_RECORD its event
// holds when its type is KEY_EVENT.
type inputRecord struct {
	eventType uint16
	_         uint16
	event     [16]byte
}

type keyEvent struct {
	keyDown         int32
	repeatCount     uint16
	virtualKeyCode  uint16
	virtualScanCode uint16
	char            uint16
	controlKeyState uint32
}

// forwardKeys copies what is typed at the console in to the pseudo console
// until stop is closed, and reports a window size event on resized. It
// reads only when input is waiting, so that it stops without taking keys
// meant for the shell once the command has ended. In VT input mode every
// key comes as characters (a cursor key as its VT sequence), which the
// pseudo console reads as a terminal's.
func forwardKeys(in windows.Handle, to io.Writer, resized chan<- struct{}, stop <-chan struct{}) {
	var recs [64]inputRecord
	var chars []uint16
	for {
		select {
		case <-stop:
			return
		default:
		}
		ev, err := windows.WaitForSingleObject(in, 50)
		if err != nil {
			return
		}
		if ev == uint32(windows.WAIT_TIMEOUT) {
			continue
		}
		var n uint32
		if r, _, _ := procReadConsoleInputW.Call(uintptr(in), uintptr(unsafe.Pointer(&recs[0])), uintptr(len(recs)), uintptr(unsafe.Pointer(&n))); r == 0 {
			return
		}
		for _, rec := range recs[:n] {
			switch rec.eventType {
			case windows.KEY_EVENT:
				k := (*keyEvent)(unsafe.Pointer(&rec.event))
				for i := uint16(0); k.keyDown != 0 && k.char != 0 && i < max(k.repeatCount, 1); i++ {
					chars = append(chars, k.char)
				}
			case windows.WINDOW_BUFFER_SIZE_EVENT:
				select {
				case resized <- struct{}{}:
				default:
				}
			}
		}
		// A character outside the BMP may come in two reads.
		keep := 0
		if len(chars) > 0 && utf16.IsSurrogate(rune(chars[len(chars)-1])) && chars[len(chars)-1] < 0xdc00 {
			keep = 1
		}
		if len(chars) > keep {
			if _, err := io.WriteString(to, string(utf16.Decode(chars[:len(chars)-keep]))); err != nil {
				return
			}
		}
		chars = append(chars[:0], chars[len(chars)-keep:]...)
	}
}

// windowSize is the size of the window of the console screen buffer h, and
// whether h is one.
func windowSize(h windows.Handle) (windows.Coord, bool) {
	var info windows.ConsoleScreenBufferInfo
	if windows.GetConsoleScreenBufferInfo(h, &info) != nil {
		return windows.Coord{}, false
	}
	w := info.Window
	size := windows.Coord{X: w.Right - w.Left + 1, Y: w.Bottom - w.Top + 1}
	return size, size.X > 0 && size.Y > 0
}

// setMode sets the bits on and clears the bits off of h's console mode, and
// returns what restores it.
func setMode(h windows.Handle, on, off uint32) (restore func()) {
	var old uint32
	if windows.GetConsoleMode(h, &old) != nil {
		return func() {}
	}
	if windows.SetConsoleMode(h, old&^off|on) != nil {
		return func() {}
	}
	return func() { windows.SetConsoleMode(h, old) }
}

// isConsole reports whether f is a console handle.
func isConsole(f *os.File) bool {
	var mode uint32
	return windows.GetConsoleMode(handle(f), &mode) == nil
}

func handle(f *os.File) windows.Handle { return windows.Handle(f.Fd()) }

// inheritable returns an inheritable copy of h, or 0 (the pseudo console's
// stream) when it has none.
func inheritable(h windows.Handle) windows.Handle {
	self := windows.CurrentProcess()
	var dup windows.Handle
	if windows.DuplicateHandle(self, h, self, &dup, 0, true, windows.DUPLICATE_SAME_ACCESS) != nil {
		return 0
	}
	return dup
}

// commandLine joins args as os/exec does, so that the command parses the
// same arguments in a pseudo console as through pipes.
func commandLine(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = syscall.EscapeArg(a)
	}
	return strings.Join(quoted, " ")
}

// environmentBlock is env as CreateProcess takes it: NAME=VALUE strings
// sorted by name (case-insensitively), each ended by NUL, then a NUL. A
// nil env is nil, the inherited environment. As os/exec does, of
// variables named twice the last wins, and it adds SYSTEMROOT, which
// Windows' own libraries need, when env lacks it.
func environmentBlock(env []string) ([]uint16, error) {
	if env == nil {
		return nil, nil
	}
	name := func(kv string) string {
		n, _, _ := strings.Cut(kv[min(1, len(kv)):], "=") // "=C:=C:\dir" names "=C:"
		return strings.ToUpper(kv[:min(1, len(kv))] + n)
	}
	last := make(map[string]string, len(env))
	for _, kv := range env {
		last[name(kv)] = kv
	}
	if _, ok := last["SYSTEMROOT"]; !ok {
		if v, ok := os.LookupEnv("SYSTEMROOT"); ok {
			last["SYSTEMROOT"] = "SYSTEMROOT=" + v
		}
	}
	var block []uint16
	for _, n := range slices.Sorted(maps.Keys(last)) {
		kv := last[n]
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, errors.New("an environment variable holds a NUL byte")
		}
		block = append(block, utf16.Encode([]rune(kv))...)
		block = append(block, 0)
	}
	return append(block, 0), nil
}
