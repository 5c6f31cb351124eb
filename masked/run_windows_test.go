package masked

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opxhq/opx/internal/testdir"
	"golang.org/x/sys/windows"
)

// childEnv makes the test binary one of the programs below instead of the
// tests: the command opx run runs, or opx run itself.
const childEnv = "OPX_MASKED_TEST_CHILD"

const secret = "s3cr3t-value"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "print":
		// A program that prints the value on both streams, a multi-line
		// one as the C runtime's text mode writes it, and exits 7.
		fmt.Printf("a %s b\n", secret)
		fmt.Fprintf(os.Stderr, "%s\r\n", secret)
		fmt.Printf("multi %s\r\nline end\n", secret)
		os.Exit(7)
	case "wait-interrupt":
		// A program that waits for Ctrl-C or Ctrl-Break, then prints the
		// value and exits 3.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt)
		fmt.Println("ready", os.Getpid())
		select {
		case <-sigs:
			fmt.Printf("interrupted %s\n", secret)
			os.Exit(3)
		case <-time.After(10 * time.Second):
			os.Exit(4)
		}
	case "console-run":
		// opx run in a console: the test binary as console-child,
		// concealed; with redirectEnv set, its stdin and stderr are
		// files there.
		os.Exit(consoleRun())
	case "console-child":
		// A program in a console: it tells what console it has, prints
		// the value on it (once in two parts) and on stderr, echoes a
		// line read from stdin, and exits 7.
		consoleChild()
		os.Exit(7)
	case "run":
		// opx run: the test binary as wait-interrupt, concealed.
		me, _ := os.Executable()
		code, err := Run(Command{Path: me, Args: []string{me},
			Env:    append(os.Environ(), childEnv+"=wait-interrupt"),
			Values: [][]byte{[]byte(secret)}, Marker: "<hidden>",
			Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(code)
	}
	os.Exit(100)
}

// runChild runs the test binary as the program mode through Run, its output
// in files, and returns its status and what it printed.
func runChild(t *testing.T, mode string) (code int, stdout, stderr string) {
	t.Helper()
	me, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := testdir.New(t)
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	in, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, errf := open("out"), open("err")
	code, err = Run(Command{Path: me, Args: []string{me}, Env: append(os.Environ(), childEnv+"="+mode),
		Values: [][]byte{[]byte(secret), []byte("multi " + secret + "\nline")}, Marker: "<hidden>",
		Stdin: in, Stdout: out, Stderr: errf})
	if err != nil {
		t.Fatalf("Run(%s): %v", mode, err)
	}
	out.Close()
	errf.Close()
	b1, _ := os.ReadFile(out.Name())
	b2, _ := os.ReadFile(errf.Name())
	return code, string(b1), string(b2)
}

// opx run on Windows conceals the values in both streams, "\r\n" line ends
// included, and returns the command's exit status.
func TestRunConcealsAndReturnsTheStatus(t *testing.T) {
	code, out, errs := runChild(t, "print")
	wantOut, wantErr := "a <hidden> b\n<hidden> end\n", "<hidden>\r\n"
	if code != 7 || out != wantOut || errs != wantErr {
		t.Errorf("Run = %d, %q, %q; want 7, %q, %q", code, out, errs, wantOut, wantErr)
	}
	if strings.Contains(out+errs, "s3cr3t") {
		t.Errorf("the value leaked: %q %q", out, errs)
	}
}

func TestRunMissingProgram(t *testing.T) {
	code, err := Run(Command{Path: `C:\nonexistent\prog.exe`, Args: []string{"prog"}, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
	if code != 127 || err == nil {
		t.Errorf("a missing program: status %d, err %v; want 127 and an error", code, err)
	}
}

// Ctrl-Break reaches the command through the console (they share its
// process group); opx outlives it, conceals what the command prints on its
// way out, and returns its status.
func TestRunPassesCtrlBreakAndReturnsTheStatus(t *testing.T) {
	me, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A console for the Ctrl-Break: go test gives the test none (wine
	// makes one); it fails when the test has one already, as good.
	windows.NewLazySystemDLL("kernel32.dll").NewProc("AllocConsole").Call()
	cmd := exec.Command(me)
	cmd.Env = append(os.Environ(), childEnv+"=run")
	// A group of its own, which GenerateConsoleCtrlEvent can name, so
	// that the Ctrl-Break reaches opx run and its command, not this test.
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: windows.CREATE_NEW_PROCESS_GROUP}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	var pid int
	if !lines.Scan() {
		t.Fatalf("opx run printed nothing (stderr %q)", stderr.String())
	}
	if _, err := fmt.Sscanf(lines.Text(), "ready %d", &pid); err != nil {
		t.Fatalf("opx run printed %q first, want ready and a pid (stderr %q)", lines.Text(), stderr.String())
	}
	if err := windows.GenerateConsoleCtrlEvent(windows.CTRL_BREAK_EVENT, uint32(cmd.Process.Pid)); err != nil {
		// Wine 8 has no console for it here ("Invalid access").
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		t.Skipf("no console to send Ctrl-Break in: %v", err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("opx run after Ctrl-Break: %v, want exit status 3 (stderr %q)", err, stderr.String())
	}
	if want := []string{"interrupted <hidden>"}; !slices.Equal(rest, want) {
		t.Errorf("opx run printed %q after Ctrl-Break, want %q", rest, want)
	}
}

// underWine reports whether the tests run under wine, whose pseudo console
// does not connect a program's NULL standard handles to it: they stay NULL,
// and a program there reaches its console by opening CONIN$ and CONOUT$,
// as any program may.
func underWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

// redirectEnv names the directory where console-run's stdin ("in") and
// stderr ("err") are, when they are not the console.
const redirectEnv = "OPX_MASKED_TEST_REDIRECT"

// standardStreams are the process's standard input and output, its console
// (CONIN$, CONOUT$) where they are NULL (wine).
func standardStreams() (in, out *os.File) {
	in, out = os.Stdin, os.Stdout
	if handle(in) == 0 {
		in, _ = os.OpenFile("CONIN$", os.O_RDWR, 0)
	}
	if handle(out) == 0 {
		out, _ = os.OpenFile("CONOUT$", os.O_RDWR, 0)
	}
	return in, out
}

func consoleRun() int {
	in, out := standardStreams()
	if in == nil || out == nil {
		return 101
	}
	errs := out
	if dir := os.Getenv(redirectEnv); dir != "" {
		in, _ = os.Open(filepath.Join(dir, "in"))
		errs, _ = os.Create(filepath.Join(dir, "err"))
		if in == nil || errs == nil {
			return 102
		}
		defer errs.Close()
	}
	me, _ := os.Executable()
	modes := func() [2]uint32 {
		var m [2]uint32
		windows.GetConsoleMode(handle(in), &m[0])
		windows.GetConsoleMode(handle(out), &m[1])
		return m
	}
	// The console's modes before, while (sampled) and after the command
	// runs.
	before := modes()
	var during [][2]uint32
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if m := modes(); !slices.Contains(during, m) {
				during = append(during, m)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	code, err := Run(Command{Path: me, Args: []string{me},
		Env:    append(os.Environ(), childEnv+"=console-child"),
		Values: [][]byte{[]byte(secret)}, Marker: "<hidden>",
		Stdin: in, Stdout: out, Stderr: errs,
		Warn: func(msg string) { fmt.Fprintln(out, "warning:", msg) }})
	close(stop)
	<-stopped
	if err != nil {
		fmt.Fprintln(out, "error:", err)
	}
	fmt.Fprintf(out, "modes before %#x %#x\r\n", before[0], before[1])
	for _, m := range during {
		fmt.Fprintf(out, "modes during %#x %#x\r\n", m[0], m[1])
	}
	after := modes()
	fmt.Fprintf(out, "modes after %#x %#x\r\n", after[0], after[1])
	return code
}

func consoleChild() {
	stdoutIsConsole := isConsole(os.Stdout)
	in, _ := standardStreams()
	out, err := os.OpenFile("CONOUT$", os.O_RDWR, 0)
	if in == nil || err != nil {
		os.Exit(103)
	}
	size, _ := windowSize(handle(out))
	fmt.Fprintf(out, "stdout console %v\r\n", stdoutIsConsole)
	fmt.Fprintf(out, "console %dx%d\r\n", size.X, size.Y)
	fmt.Fprintf(out, "one %s end\r\n", secret)
	fmt.Fprintf(out, "two %s", secret[:5])
	time.Sleep(50 * time.Millisecond) // the console paints a frame between
	fmt.Fprintf(out, "%s end\r\n", secret[5:])
	fmt.Fprintf(os.Stderr, "err %s\r\n", secret)
	fmt.Fprintf(out, "ready\r\n")
	line, _ := bufio.NewReader(in).ReadString('\n')
	fmt.Fprintf(out, "typed %s\r\n", strings.TrimSpace(line))
}

// terminal is the test's terminal: a pseudo console, and what it painted
// so far.
type terminal struct {
	pc   *pseudoConsole
	mu   sync.Mutex
	seen []byte
}

// controls are the control sequences of what a terminal is sent, and
// forward the one that moves the cursor right (over blanks, on a clean
// screen), as a console paints spaces at the end of what it painted.
var (
	controls = regexp.MustCompile("\x1b(\\[[0-?]*[ -/]*[@-~]|\\][^\x07]*\x07|[ -/]*[0-~])")
	forward  = regexp.MustCompile("\x1b\\[([0-9]*)C")
)

// text is what the terminal shows: the text it was sent, a cursor move
// right as spaces.
func (term *terminal) text() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	s := forward.ReplaceAllStringFunc(string(term.seen), func(seq string) string {
		n, err := strconv.Atoi(forward.FindStringSubmatch(seq)[1])
		if err != nil {
			n = 1
		}
		return strings.Repeat(" ", n)
	})
	return controls.ReplaceAllString(s, "")
}

func (term *terminal) Write(p []byte) (int, error) {
	term.mu.Lock()
	defer term.mu.Unlock()
	term.seen = append(term.seen, p...)
	return len(p), nil
}

// waitFor waits until the terminal shows s.
func (term *terminal) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(term.text(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows %q", s, term.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runInTerminal runs opx run (console-run) in a terminal of the given
// size, types typed once the command is ready, and returns what the
// terminal showed and opx run's exit status.
func runInTerminal(t *testing.T, size windows.Coord, env []string, typed string) (shown string, code uint32) {
	t.Helper()
	me, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := newPseudoConsole(size)
	if err != nil {
		t.Fatalf("the test's own pseudo console: %v", err)
	}
	term := &terminal{pc: pc}
	done := copyOut(term, pc.out)
	defer func() {
		go pc.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("the terminal's output did not end 10 s after it was closed")
		}
	}()
	env = append(append(os.Environ(), childEnv+"=console-run"), env...)
	if err := pc.start(Command{Path: me, Args: []string{me}, Env: env}, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer windows.CloseHandle(pc.process)
	defer windows.TerminateProcess(pc.process, 1) // when the test fails before opx run ends

	term.waitFor(t, "ready")
	if _, err := pc.in.Write([]byte(typed)); err != nil {
		t.Fatal(err)
	}
	if ev, err := windows.WaitForSingleObject(pc.process, 60*1000); ev != windows.WAIT_OBJECT_0 {
		t.Fatalf("opx run did not end within a minute (%v); the terminal shows %q", err, term.text())
	}
	windows.GetExitCodeProcess(pc.process, &code)
	term.waitFor(t, "modes after")
	return term.text(), code
}

// opx run, when its output is a console, gives the command a pseudo console
// of its own, sized like opx's window: the command finds a console there,
// its output reaches opx's console with the value concealed (also when the
// console paints it in two frames), what is typed at opx's console reaches
// it (opx's console is in raw mode meanwhile, and restored after), and opx
// exits with its status. Where opx's stdin and stderr are not the console,
// the command reads the same stdin, and its stderr is concealed on the way.
func TestRunGivesAConsoleCommandAPseudoConsole(t *testing.T) {
	if !havePseudoConsole() {
		t.Fatal("no pseudo consoles here: this Windows is older than 10 1809, and the path is untested")
	}
	for _, c := range []struct {
		name     string
		redirect bool
	}{
		{"console", false},
		{"stdin and stderr redirected", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			defer func() { t.Logf("took %s", time.Since(start).Round(time.Millisecond)) }()
			var env []string
			typed, wantTyped := "hello\r", "typed hello"
			dir := testdir.New(t)
			if c.redirect {
				env = append(env, redirectEnv+"="+dir)
				if err := os.WriteFile(filepath.Join(dir, "in"), []byte("piped line\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				typed, wantTyped = "", "typed piped line"
			}
			size := windows.Coord{X: 97, Y: 31}
			shown, code := runInTerminal(t, size, env, typed)
			if code != 7 {
				t.Errorf("opx run's exit status = %d, want the command's 7; the terminal shows %q", code, shown)
			}
			for _, want := range []string{
				fmt.Sprintf("console %dx%d", size.X, size.Y), "one <hidden> end", "two <hidden> end", wantTyped,
			} {
				if !strings.Contains(shown, want) {
					t.Errorf("the terminal shows %q, want %q in it", shown, want)
				}
			}
			if strings.Contains(shown, secret[:5]) || strings.Contains(shown, "warning") || strings.Contains(shown, "error") {
				t.Errorf("the terminal shows %q: the value, a warning or an error", shown)
			}
			if wantStdout := !underWine(); !strings.Contains(shown, fmt.Sprintf("stdout console %v", wantStdout)) {
				t.Errorf("the terminal shows %q, want stdout console %v", shown, wantStdout)
			}
			checkModes(t, shown, c.redirect)
			if c.redirect {
				b, err := os.ReadFile(filepath.Join(dir, "err"))
				if want := "err <hidden>\r\n"; err != nil || string(b) != want {
					t.Errorf("the command's stderr, redirected: %q, %v; want %q", b, err, want)
				}
			}
		})
	}
}

// checkModes checks the console modes opx run's process reported: while
// the command ran, its console's input was in raw VT input mode (unless
// stdin was redirected: then input modes are those of no console) and its
// output took VT sequences; after, both were as before.
func checkModes(t *testing.T, shown string, redirected bool) {
	t.Helper()
	modes := map[string][][2]uint64{}
	for _, m := range regexp.MustCompile(`modes (before|during|after) (0x[0-9a-f]+) (0x[0-9a-f]+)`).FindAllStringSubmatch(shown, -1) {
		in, _ := strconv.ParseUint(m[2], 0, 32)
		out, _ := strconv.ParseUint(m[3], 0, 32)
		modes[m[1]] = append(modes[m[1]], [2]uint64{in, out})
	}
	if len(modes["before"]) != 1 || len(modes["after"]) != 1 {
		t.Errorf("the terminal shows %q, want opx run's console modes", shown)
		return
	}
	if before, after := modes["before"][0], modes["after"][0]; before != after {
		t.Errorf("console modes (input, output) before opx run %#x, after %#x; want them restored", before, after)
	}
	raw := false
	for _, m := range modes["during"] {
		rawInput := m[0]&windows.ENABLE_VIRTUAL_TERMINAL_INPUT != 0 &&
			m[0]&(windows.ENABLE_PROCESSED_INPUT|windows.ENABLE_LINE_INPUT|windows.ENABLE_ECHO_INPUT) == 0
		if (rawInput || redirected) && m[1]&windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
			raw = true
		}
	}
	if !raw {
		t.Errorf("console modes (input, output) while the command ran: %#x; want raw VT input, and VT processing on output", modes["during"])
	}
}
