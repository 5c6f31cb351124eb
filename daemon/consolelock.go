package daemon

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strconv"
	"time"
)

// consoleLocked reads `ioreg -n Root -d1 -a` (macOS: the IORegistry root
// as a property list) and reports whether the console session of user uid
// has its screen locked: IOConsoleUsers lists the sessions, each a dict
// with kCGSSessionUserIDKey and, while its screen is locked,
// CGSSessionScreenIsLocked true. found is false when uid has no console
// session there.
func consoleLocked(plist []byte, uid int) (locked, found bool, err error) {
	root, err := parsePlist(plist)
	if err != nil {
		return false, false, err
	}
	dict, ok := root.(map[string]any)
	if !ok {
		return false, false, errors.New("ioreg: the root is not a dict")
	}
	users, _ := dict["IOConsoleUsers"].([]any)
	for _, u := range users {
		session, ok := u.(map[string]any)
		if !ok {
			continue
		}
		if id, ok := session["kCGSSessionUserIDKey"].(int64); !ok || id != int64(uid) {
			continue
		}
		found = true
		if l, ok := session["CGSSessionScreenIsLocked"].(bool); ok && l {
			locked = true
		}
	}
	return locked, found, nil
}

// parsePlist decodes an XML property list into map[string]any, []any,
// string, int64, bool and (for data, dates and reals) their text.
func parsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "plist" {
			return plistValue(d, nil)
		}
	}
}

// plistValue decodes the next value; start, when set, is its element,
// already read.
func plistValue(d *xml.Decoder, start *xml.StartElement) (any, error) {
	for start == nil {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			start = &t
		case xml.EndElement:
			return nil, errEndOfContainer
		}
	}
	switch start.Name.Local {
	case "dict":
		m := map[string]any{}
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, err
			}
			switch t := tok.(type) {
			case xml.EndElement:
				return m, nil
			case xml.StartElement:
				if t.Name.Local != "key" {
					return nil, errors.New("plist: a dict entry without a key")
				}
				var key string
				if err := d.DecodeElement(&key, &t); err != nil {
					return nil, err
				}
				v, err := plistValue(d, nil)
				if err != nil {
					return nil, err
				}
				m[key] = v
			}
		}
	case "array":
		var a []any
		for {
			v, err := plistValue(d, nil)
			if errors.Is(err, errEndOfContainer) {
				return a, nil
			}
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, err
		}
		return start.Name.Local == "true", nil
	case "integer":
		var s string
		if err := d.DecodeElement(&s, start); err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace([]byte(s))), 10, 64)
		if err != nil {
			return nil, err
		}
		return n, nil
	default: // string, data, date, real
		var s string
		if err := d.DecodeElement(&s, start); err != nil {
			return nil, err
		}
		return s, nil
	}
}

var errEndOfContainer = errors.New("plist: end of container")

// sleepDetector tells that the machine slept between two looks: the wall
// clock then moved on more than the monotonic clock, which stops while
// the machine sleeps (macOS).
type sleepDetector struct {
	wall time.Time // the last look, with its monotonic reading
}

// slept reports, for a look at now, whether the machine slept for more
// than min since the last look.
func (s *sleepDetector) slept(now time.Time, min time.Duration) bool {
	last := s.wall
	s.wall = now
	if last.IsZero() {
		return false
	}
	// Sub of two readings with a monotonic clock uses it; Round(0) drops
	// it, leaving the wall clocks.
	return sleptDuring(now.Round(0).Sub(last.Round(0)), now.Sub(last), min)
}

// sleptDuring reports whether the wall clock moved on more than min
// beyond the monotonic one.
func sleptDuring(wall, mono, min time.Duration) bool { return wall-mono > min }
