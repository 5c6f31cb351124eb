package cli

import "github.com/opxhq/opx/internal/printable"

// Printable returns s as it can be shown to a person on a terminal
// (printable.String): control characters, bidirectional overrides and
// invalid UTF-8 escaped.
func Printable(s string) string { return printable.String(s) }
