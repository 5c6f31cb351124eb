package shim

import "os"

// shimExecPID is the pid a shim that passed this process on wrote in
// shimExecVar: its parent's, as Windows runs the real program as the
// shim's child (cli.Exec).
func shimExecPID() int { return os.Getppid() }
