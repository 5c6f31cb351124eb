package harness

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// RunTTY runs prog as Run does, with stdout a pseudo-terminal (in raw
// output mode, so the bytes are the program's own) and stderr a pipe.
func (e *Env) RunTTY(prog string, extra []string, args ...string) Result {
	e.T.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		e.T.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	var n int
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		e.T.Skipf("cannot unlock a pseudo-terminal: %v", err)
	}
	if n, err = unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN); err != nil {
		e.T.Skipf("cannot name a pseudo-terminal: %v", err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		e.T.Skipf("cannot open a pseudo-terminal: %v", err)
	}
	defer slave.Close()
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		e.T.Fatal(err)
	}
	tio.Oflag &^= unix.OPOST // no \n to \r\n
	if err := unix.IoctlSetTermios(int(slave.Fd()), unix.TCSETS, tio); err != nil {
		e.T.Fatal(err)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = e.Environ(extra...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = slave, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.T.Fatal(err)
	}
	// The program has ended and the test holds the terminal's other end:
	// what it wrote is in the master's buffer.
	var out bytes.Buffer
	fd := int(master.Fd()) // once: each call of Fd makes the file blocking again
	unix.SetNonblock(fd, true)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			break
		}
		out.Write(buf[:n])
	}
	return Result{out.String(), errb.String(), code}
}
