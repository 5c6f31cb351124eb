// Command bao is the real OpenBao CLI, built from the same module (and
// commit, OpenBao 2.4.0) as the server in ../openbao, so that opx's bao shim
// can be compared with it byte for byte. It is a test tool, never shipped.
package main

import (
	"os"

	"github.com/openbao/openbao/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
