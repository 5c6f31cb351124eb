// Command vault is the real Vault CLI, release 1.14.1, built from the same
// module as the server in ../vault, so that opx's vault shim can be compared
// with it byte for byte. It is a test tool, never shipped.
//
// The go:debug line: a database plugin Vault links in (gosnowflake) parses a
// CA certificate with a negative serial number when it starts, which Go
// refuses since 1.23 unless told otherwise; the CLI would panic at once.
//
//go:debug x509negativeserial=1
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
