package daemon

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

// D-Bus names the watcher listens to.
const (
	login1Name      = "org.freedesktop.login1"
	login1Session   = "org.freedesktop.login1.Session"
	login1Manager   = "org.freedesktop.login1.Manager"
	dbusProperties  = "org.freedesktop.DBus.Properties"
	screenSaverFDO  = "org.freedesktop.ScreenSaver"
	screenSaverGNOM = "org.gnome.ScreenSaver"
)

// watchSession follows the user's session on Linux: logind on the system
// bus (a session of this user locked, its LockedHint set, or the machine
// about to sleep) and the desktop's screensaver on the session bus
// (ActiveChanged). It calls event for each, from a goroutine of its own,
// and returns what it watches (or why nothing), and stop.
//
// Only logind's signals count for an unlock: logind's name can be owned by
// root alone, where any program of the user may send a screensaver signal
// on the session bus. A lock counts from either: a lock only takes secrets
// away.
func watchSession(getenv func(string) string, event func(sessionEvent)) (status string, stop func()) {
	var parts, missing []string
	var stops []func()
	if conn, err := busConn(getenv("DBUS_SYSTEM_BUS_ADDRESS"), "/run/dbus/system_bus_socket"); err != nil {
		missing = append(missing, "no system bus ("+err.Error()+"): screen lock and sleep through logind are not followed")
	} else if err := watchLogind(conn, event); err != nil {
		conn.Close()
		missing = append(missing, err.Error())
	} else {
		parts = append(parts, "logind (screen lock, sleep)")
		stops = append(stops, func() { conn.Close() })
	}
	sessionDefault := ""
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" {
		sessionDefault = rt + "/bus"
	}
	if conn, err := busConn(getenv("DBUS_SESSION_BUS_ADDRESS"), sessionDefault); err != nil {
		missing = append(missing, "no session bus: the desktop's screensaver is not followed")
	} else if err := watchScreenSaver(conn, event); err != nil {
		conn.Close()
		missing = append(missing, err.Error())
	} else {
		parts = append(parts, "the desktop's screensaver")
		stops = append(stops, func() { conn.Close() })
	}
	status = strings.Join(parts, " and ")
	if len(missing) > 0 {
		if status != "" {
			status += "; "
		}
		status += strings.Join(missing, "; ")
	}
	return status, func() {
		for _, s := range stops {
			s()
		}
	}
}

// busConn connects to the bus at addr, or, when addr is "", at the socket
// path def when one is there.
func busConn(addr, def string) (*dbus.Conn, error) {
	if addr == "" {
		if def == "" {
			return nil, errors.New("no address")
		}
		if fi, err := os.Stat(def); err != nil || fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("no socket at %s", def)
		}
		addr = "unix:path=" + def
	}
	conn, err := dbus.Connect(addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return conn, nil
}

// watchLogind listens for this user's sessions' Lock and Unlock,
// LockedHint changes, and PrepareForSleep, from logind's own connection.
func watchLogind(conn *dbus.Conn, event func(sessionEvent)) error {
	var owner string
	if err := conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, login1Name).Store(&owner); err != nil {
		return fmt.Errorf("no logind on the system bus (%v): screen lock and sleep are not followed", err)
	}
	// The channel first: a signal that matches before it is there is lost.
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	for _, m := range [][]dbus.MatchOption{
		{dbus.WithMatchSender(login1Name), dbus.WithMatchInterface(login1Session), dbus.WithMatchMember("Lock")},
		{dbus.WithMatchSender(login1Name), dbus.WithMatchInterface(login1Session), dbus.WithMatchMember("Unlock")},
		{dbus.WithMatchSender(login1Name), dbus.WithMatchInterface(login1Manager), dbus.WithMatchMember("PrepareForSleep")},
		{dbus.WithMatchSender(login1Name), dbus.WithMatchInterface(dbusProperties), dbus.WithMatchMember("PropertiesChanged"), dbus.WithMatchArg(0, login1Session)},
	} {
		if err := conn.AddMatchSignal(m...); err != nil {
			return fmt.Errorf("listen to logind: %w", err)
		}
	}
	mine := &userSessions{conn: conn, uid: uint32(os.Getuid()), known: map[dbus.ObjectPath]bool{}}
	go func() {
		for sig := range ch {
			// The bus says who sent it: logind's connection, and no other
			// (asked again when logind restarted).
			if sig.Sender != owner {
				var now string
				if conn.BusObject().Call("org.freedesktop.DBus.GetNameOwner", 0, login1Name).Store(&now) != nil || sig.Sender != now {
					continue
				}
				owner = now
			}
			switch sig.Name {
			case login1Session + ".Lock":
				if mine.is(sig.Path) {
					event(sessionEvent{lock: true, cause: "the screen locked (logind)"})
				}
			case login1Session + ".Unlock":
				if mine.is(sig.Path) {
					event(sessionEvent{lock: false, trusted: true, cause: "the screen unlocked (logind)"})
				}
			case login1Manager + ".PrepareForSleep":
				if len(sig.Body) == 1 {
					if start, ok := sig.Body[0].(bool); ok && start {
						event(sessionEvent{lock: true, sleep: true, cause: "the machine is going to sleep (logind)"})
					}
				}
			case dbusProperties + ".PropertiesChanged":
				if len(sig.Body) < 2 || !mine.is(sig.Path) {
					continue
				}
				changed, _ := sig.Body[1].(map[string]dbus.Variant)
				if v, ok := changed["LockedHint"]; ok {
					if locked, ok := v.Value().(bool); ok {
						event(sessionEvent{lock: locked, trusted: true, cause: map[bool]string{true: "the screen locked (logind LockedHint)", false: "the screen unlocked (logind LockedHint)"}[locked]})
					}
				}
			}
		}
	}()
	return nil
}

// userSessions tells this user's logind sessions from others'.
type userSessions struct {
	conn  *dbus.Conn
	uid   uint32
	mu    sync.Mutex
	known map[dbus.ObjectPath]bool
}

// is reports whether the session at path is this user's (its User
// property), remembering the answer.
func (u *userSessions) is(path dbus.ObjectPath) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if mine, ok := u.known[path]; ok {
		return mine
	}
	v, err := u.conn.Object(login1Name, path).GetProperty(login1Session + ".User")
	if err != nil {
		return false
	}
	mine := false
	if user, ok := v.Value().([]any); ok && len(user) == 2 {
		uid, _ := user[0].(uint32)
		mine = uid == u.uid
	}
	u.known[path] = mine
	return mine
}

// watchScreenSaver listens for the desktop's screensaver turning on
// (ActiveChanged true), from any sender: it can only lock.
func watchScreenSaver(conn *dbus.Conn, event func(sessionEvent)) error {
	ch := make(chan *dbus.Signal, 16)
	conn.Signal(ch)
	for _, iface := range []string{screenSaverFDO, screenSaverGNOM} {
		if err := conn.AddMatchSignal(dbus.WithMatchInterface(iface), dbus.WithMatchMember("ActiveChanged")); err != nil {
			return fmt.Errorf("listen to the screensaver: %w", err)
		}
	}
	go func() {
		for sig := range ch {
			if !strings.HasSuffix(sig.Name, ".ActiveChanged") || len(sig.Body) != 1 {
				continue
			}
			if active, ok := sig.Body[0].(bool); ok && active {
				event(sessionEvent{lock: true, cause: "the screensaver started"})
			}
		}
	}()
	return nil
}
