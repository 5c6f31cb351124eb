package masked

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
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
