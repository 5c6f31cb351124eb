//go:build unix && !darwin

package notify

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
)

// The freedesktop Desktop Notifications interface, and the action keys opx
// gives its two buttons.
const (
	busName  = "org.freedesktop.Notifications"
	objPath  = dbus.ObjectPath("/org/freedesktop/Notifications")
	iface    = "org.freedesktop.Notifications"
	allowKey = "opx-allow"
	denyKey  = "opx-deny"
)

// NotificationClosed reasons, as the specification numbers them.
const (
	closedExpired   = 1
	closedDismissed = 2
	closedByCall    = 3
)

// availableTimeout bounds Available's talk with the bus, which has no
// context of its own: a notification server that D-Bus starts on demand
// (dunst, notification-daemon) answers its first call once it has started.
const availableTimeout = 5 * time.Second

// withdrawTimeout bounds the CloseNotification sent after the caller's
// context ended, which can no longer bound it.
const withdrawTimeout = 2 * time.Second

// Available reports whether Ask can work: a session bus answers, a
// notification server is on it (or can be started by it), and the server
// shows actions.
func Available(getenv func(string) string) error {
	ctx, cancel := context.WithTimeout(context.Background(), availableTimeout)
	defer cancel()
	conn, err := dial(ctx, getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = capabilities(ctx, conn)
	return err
}

// Ask shows p as a notification with an Allow and a Deny action and waits
// for the user: true for Allow, false for Deny or a dismissal by the user.
// When ctx ends first it withdraws the notification and returns ctx.Err().
//
// The notification asks never to expire (expire_timeout 0, where -1 would
// take the server's default, often seconds): the caller's context is the
// one clock, and a question gone before the user looked would leave only
// the refusal at the caller's timeout. It is critical (urgency 2), which
// the specification says a server should not expire by itself either,
// for the servers that ignore expire_timeout. It is not "resident": once
// answered it should go.
func Ask(ctx context.Context, getenv func(string) string, p Prompt) (bool, error) {
	conn, err := dial(ctx, getenv)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	srv, err := capabilities(ctx, conn)
	if err != nil {
		return false, failed(ctx, err)
	}
	// Only the server's own signals answer: another program on the bus can
	// emit an ActionInvoked with any id, but not with the server's unique
	// name as its sender, which the bus daemon sets.
	signals := make(chan *dbus.Signal, 16)
	conn.Signal(signals)
	for _, member := range []string{"ActionInvoked", "NotificationClosed"} {
		err := conn.AddMatchSignalContext(ctx, dbus.WithMatchSender(srv.owner),
			dbus.WithMatchObjectPath(objPath), dbus.WithMatchInterface(iface), dbus.WithMatchMember(member))
		if err != nil {
			return false, failed(ctx, fmt.Errorf("%w: subscribe to %s: %v", ErrUnavailable, member, err))
		}
	}
	// The match rules come first: a server may answer before Notify's
	// reply reaches us, and the channel keeps such a signal until the id
	// is known.
	id, err := srv.notify(ctx, conn, p)
	if err != nil {
		return false, failed(ctx, err)
	}
	allow, err := wait(ctx, signals, srv.owner, id)
	if err != nil && ctx.Err() != nil {
		withdraw(conn, srv.owner, id)
		return false, ctx.Err()
	}
	return allow, err
}

// failed is err, or ctx's error when ctx ended: a call cut short by the
// caller says nothing about the notification server.
func failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// busAddress is the session bus's address: DBUS_SESSION_BUS_ADDRESS, else
// the socket that systemd --user and dbus-user-session put at
// $XDG_RUNTIME_DIR/bus.
func busAddress(getenv func(string) string) (string, error) {
	if addr := getenv("DBUS_SESSION_BUS_ADDRESS"); addr != "" {
		return addr, nil
	}
	dir := getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		return "", unavailable("no session bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset")
	}
	path := filepath.Join(dir, "bus")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Type() != fs.ModeSocket {
		return "", unavailable("no session bus: DBUS_SESSION_BUS_ADDRESS is unset and %s is not a socket", path)
	}
	return "unix:path=" + dbus.EscapeBusAddressValue(path), nil
}

// dial opens a private connection to the session bus, authenticated and
// named (Auth, Hello): never godbus's process-wide shared one, which
// follows this process's environment and not the one getenv gives, and
// which Close must not be called on.
func dial(ctx context.Context, getenv func(string) string) (*dbus.Conn, error) {
	addr, err := busAddress(getenv)
	if err != nil {
		return nil, err
	}
	conn, err := dbus.Dial(addr)
	if err != nil {
		return nil, unavailable("session bus %s: %v", addr, err)
	}
	// Auth and Hello take no context; closing the connection ends them.
	done := make(chan error, 1)
	go func() {
		err := conn.Auth(nil)
		if err == nil {
			err = conn.Hello()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		conn.Close()
		<-done
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, unavailable("session bus %s: %v", addr, err)
	}
	return conn, nil
}

// server is the notification server that will show the prompt.
type server struct {
	owner  string // its unique name on the bus, the sender of its signals
	markup bool   // whether it reads the body as markup ("body-markup")
}

// capabilities asks the notification server what it can do (which, for a
// server that D-Bus starts on demand, starts it) and returns it when it
// shows actions, and an error wrapping ErrUnavailable otherwise.
func capabilities(ctx context.Context, conn *dbus.Conn) (server, error) {
	obj := conn.Object(busName, objPath)
	var caps []string
	if err := obj.CallWithContext(ctx, iface+".GetCapabilities", 0).Store(&caps); err != nil {
		return server{}, unavailable("no notification server on the session bus: %v", err)
	}
	if !slices.Contains(caps, "actions") {
		var name, vendor, version, spec string
		if obj.CallWithContext(ctx, iface+".GetServerInformation", 0).Store(&name, &vendor, &version, &spec) != nil {
			name = busName
		}
		return server{}, unavailable("the notification server (%s) shows no actions", name)
	}
	var owner string
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetNameOwner", 0, busName).Store(&owner); err != nil {
		return server{}, unavailable("no notification server on the session bus: %v", err)
	}
	return server{owner: owner, markup: slices.Contains(caps, "body-markup")}, nil
}

// notify shows p and returns the notification's id.
func (s server) notify(ctx context.Context, conn *dbus.Conn, p Prompt) (uint32, error) {
	allow, deny := p.labels()
	body := p.Body
	if s.markup {
		body = escapeMarkup(body)
	}
	hints := map[string]dbus.Variant{"urgency": dbus.MakeVariant(byte(2))}
	var id uint32
	err := conn.Object(s.owner, objPath).CallWithContext(ctx, iface+".Notify", 0,
		"opx", uint32(0), "", p.Title, body, []string{allowKey, allow, denyKey, deny}, hints, int32(0)).Store(&id)
	if err != nil {
		return 0, unavailable("show the notification: %v", err)
	}
	return id, nil
}

// markupEscaper escapes what a server with "body-markup" would read as
// markup (a subset of HTML, where & starts an entity).
var markupEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeMarkup is s as text for a body that a server reads as markup: a
// program path like /tmp/<b>x shows as it is.
func escapeMarkup(s string) string { return markupEscaper.Replace(s) }

// wait waits for the user's answer to notification id, from owner alone.
func wait(ctx context.Context, signals <-chan *dbus.Signal, owner string, id uint32) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case sig, ok := <-signals:
			if !ok {
				return false, fmt.Errorf("%w: the session bus connection closed", ErrNoAnswer)
			}
			if allow, done, err := answer(sig, owner, id); done {
				return allow, err
			}
		}
	}
}

// answer reads one signal: done when it answers notification id (ActionInvoked
// with one of opx's keys, or NotificationClosed), with the answer. Closed as
// dismissed by the user is a Deny: so a server that closes a notification
// clicked anywhere but on a button reports it.
func answer(sig *dbus.Signal, owner string, id uint32) (allow, done bool, err error) {
	if sig.Sender != owner || sig.Path != objPath || len(sig.Body) != 2 {
		return false, false, nil
	}
	if got, ok := sig.Body[0].(uint32); !ok || got != id {
		return false, false, nil
	}
	switch sig.Name {
	case iface + ".ActionInvoked":
		switch key, _ := sig.Body[1].(string); key {
		case allowKey:
			return true, true, nil
		case denyKey:
			return false, true, nil
		}
	case iface + ".NotificationClosed":
		reason, _ := sig.Body[1].(uint32)
		switch reason {
		case closedDismissed:
			return false, true, nil
		case closedExpired:
			return false, true, fmt.Errorf("%w: it expired", ErrNoAnswer)
		case closedByCall:
			return false, true, fmt.Errorf("%w: closed by a CloseNotification call", ErrNoAnswer)
		default:
			return false, true, fmt.Errorf("%w: closed by the server (reason %d)", ErrNoAnswer, reason)
		}
	}
	return false, false, nil
}

// withdraw closes notification id, once the question is no longer open.
// A failure leaves the notification on screen, where answering it does
// nothing; there is no one to tell.
func withdraw(conn *dbus.Conn, owner string, id uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	conn.Object(owner, objPath).CallWithContext(ctx, iface+".CloseNotification", 0, id)
}
