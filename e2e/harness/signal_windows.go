package harness

import "os"

// terminate ends process pid: Windows has no SIGTERM to ask with, so it is
// TerminateProcess, as kill. The e2e suite runs on Linux and macOS; this
// keeps the harness compiling (and vetted) for Windows.
func terminate(pid int) { kill(pid) }

// kill ends process pid at once (TerminateProcess).
func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
		p.Release()
	}
}
