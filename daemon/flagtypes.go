package daemon

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
)

// Seconds is a duration flag: a Go duration ("90s", "2m") or a plain number
// of seconds, on the command line, in the environment or in config.json.
type Seconds time.Duration

// Decode implements kong.MapperValue.
func (d *Seconds) Decode(ctx *kong.DecodeContext) error {
	v, err := decodeDuration(ctx, time.Second)
	*d = Seconds(v)
	return err
}

// Hours is a duration flag where a plain number means hours ("8", "0.5"); a
// Go duration ("90s") is taken as it is.
type Hours time.Duration

// Decode implements kong.MapperValue.
func (h *Hours) Decode(ctx *kong.DecodeContext) error {
	v, err := decodeDuration(ctx, time.Hour)
	*h = Hours(v)
	return err
}

func decodeDuration(ctx *kong.DecodeContext, unit time.Duration) (time.Duration, error) {
	t, err := ctx.Scan.PopValue("duration")
	if err != nil {
		return 0, err
	}
	var d time.Duration
	switch v := t.Value.(type) {
	case float64:
		d = time.Duration(v * float64(unit))
	case int:
		d = time.Duration(v) * unit
	case int64:
		d = time.Duration(v) * unit
	case string:
		d, err = parseDuration(v, unit)
		if err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("expected a duration but got %T", t.Value)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration must not be negative")
	}
	return d, nil
}

func parseDuration(s string, unit time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(unit)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a number nor a duration such as 90s or 2m", s)
	}
	return d, nil
}

// ParseSeconds parses a Seconds value as written in the environment or
// config.json: a Go duration, or a plain number of seconds.
func ParseSeconds(s string) (time.Duration, error) { return parseDuration(s, time.Second) }
