package daemon

import (
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// zerologOutput is stderr, wrapped in a console writer when it is a terminal.
func zerologOutput() io.Writer {
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly}
	}
	return os.Stderr
}
