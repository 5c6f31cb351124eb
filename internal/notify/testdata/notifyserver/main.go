// Command notifyserver is a freedesktop notification server for the tests
// of package notify: it owns org.freedesktop.Notifications on the session
// bus in DBUS_SESSION_BUS_ADDRESS, prints "ready" once it does, and answers
// each notification as its environment says, the way a user at a desktop
// would.
//
//	NOTIFY_CAPS    the capabilities GetCapabilities returns, comma-separated
//	               (default "actions,body-markup"; "" for none)
//	NOTIFY_LOG     a file to which each Notify call (app_name, replaces_id,
//	               summary, body, actions, hints, expire_timeout) and each
//	               CloseNotification call (close: its id) is appended as a
//	               JSON line, before the call is answered
//	NOTIFY_DELAY   how long after Notify the answer comes (a Go duration;
//	               default 0)
//	NOTIFY_ANSWER  the action key to invoke (ActionInvoked), e.g. opx-allow
//	               or opx-deny; "none" for no answer at all
//	NOTIFY_CLOSE   instead of an action, close the notification with this
//	               reason (NotificationClosed): 1 expired, 2 dismissed by the
//	               user, 3 closed by CloseNotification, 4 undefined
//	NOTIFY_OTHER   when "1", before the answer, first invoke opx-deny on a
//	               notification with another id and close that one as
//	               dismissed: signals a client must ignore
//
// CloseNotification closes the notification with reason 3, as the
// specification says, whatever NOTIFY_ANSWER is. Ids count from 1.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
)

const (
	path  = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface = "org.freedesktop.Notifications"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "notifyserver:", err)
		os.Exit(1)
	}
}

func run() error {
	s, err := newServer()
	if err != nil {
		return err
	}
	conn, err := dbus.Connect(os.Getenv("DBUS_SESSION_BUS_ADDRESS"))
	if err != nil {
		return err
	}
	defer conn.Close()
	s.conn = conn
	if err := conn.Export(s, path, iface); err != nil {
		return err
	}
	reply, err := conn.RequestName(iface, dbus.NameFlagDoNotQueue)
	if err != nil {
		return err
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fmt.Errorf("request %s: %v", iface, reply)
	}
	fmt.Println("ready")
	<-conn.Context().Done() // until the bus goes away
	return nil
}

// server is the exported object. Its methods are the interface's.
type server struct {
	conn   *dbus.Conn
	caps   []string
	delay  time.Duration
	answer string // an action key, "none", or "" with close set
	close  uint32 // a NotificationClosed reason, or 0
	other  bool
	logMu  sync.Mutex
	log    string
	lastID atomic.Uint32
}

func newServer() (*server, error) {
	s := &server{log: os.Getenv("NOTIFY_LOG"), answer: os.Getenv("NOTIFY_ANSWER"), other: os.Getenv("NOTIFY_OTHER") == "1"}
	caps, ok := os.LookupEnv("NOTIFY_CAPS")
	if !ok {
		caps = "actions,body-markup"
	}
	if caps != "" {
		s.caps = strings.Split(caps, ",")
	}
	if d := os.Getenv("NOTIFY_DELAY"); d != "" {
		var err error
		if s.delay, err = time.ParseDuration(d); err != nil {
			return nil, fmt.Errorf("NOTIFY_DELAY: %v", err)
		}
	}
	if c := os.Getenv("NOTIFY_CLOSE"); c != "" {
		n, err := strconv.ParseUint(c, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("NOTIFY_CLOSE: %v", err)
		}
		s.close = uint32(n)
	}
	return s, nil
}

func (s *server) GetCapabilities() ([]string, *dbus.Error) {
	return s.caps, nil
}

func (s *server) GetServerInformation() (name, vendor, version, specVersion string, err *dbus.Error) {
	return "notifyserver", "opx tests", "1", "1.2", nil
}

// request is one Notify call as the log holds it.
type request struct {
	AppName       string         `json:"app_name"`
	ReplacesID    uint32         `json:"replaces_id"`
	Summary       string         `json:"summary"`
	Body          string         `json:"body"`
	Actions       []string       `json:"actions"`
	Hints         map[string]any `json:"hints"`
	ExpireTimeout int32          `json:"expire_timeout"`
}

func (s *server) Notify(appName string, replacesID uint32, appIcon, summary, body string,
	actions []string, hints map[string]dbus.Variant, expireTimeout int32) (uint32, *dbus.Error) {
	r := request{appName, replacesID, summary, body, actions, map[string]any{}, expireTimeout}
	for k, v := range hints {
		r.Hints[k] = v.Value()
	}
	if err := s.append(r); err != nil {
		return 0, dbus.MakeFailedError(err)
	}
	id := s.lastID.Add(1)
	go s.respond(id)
	return id, nil
}

// respond answers notification id as the environment says.
func (s *server) respond(id uint32) {
	time.Sleep(s.delay)
	if s.other {
		s.emit("ActionInvoked", id+100, "opx-deny")
		s.emit("NotificationClosed", id+100, uint32(2))
	}
	switch {
	case s.close != 0:
		s.emit("NotificationClosed", id, s.close)
	case s.answer != "" && s.answer != "none":
		s.emit("ActionInvoked", id, s.answer)
		// As a server may once an action has closed a notification that
		// is not resident: the answer came first.
		s.emit("NotificationClosed", id, uint32(2))
	}
}

func (s *server) CloseNotification(id uint32) *dbus.Error {
	if err := s.append(map[string]uint32{"close": id}); err != nil {
		return dbus.MakeFailedError(err)
	}
	s.emit("NotificationClosed", id, uint32(3))
	return nil
}

func (s *server) emit(member string, values ...any) {
	if err := s.conn.Emit(path, iface+"."+member, values...); err != nil {
		fmt.Fprintln(os.Stderr, "notifyserver: emit:", err)
	}
}

// append adds v to the log as one JSON line.
func (s *server) append(v any) error {
	if s.log == "" {
		return nil
	}
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	f, err := os.OpenFile(s.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
