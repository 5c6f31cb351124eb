// Command login1 stands in for systemd-logind in opx's tests of following
// the user's session: it owns org.freedesktop.login1 on the bus in
// DBUS_SYSTEM_BUS_ADDRESS, with a session of this user
// (/org/freedesktop/login1/session/_31, User = (uid, path), LockedHint)
// and one of another uid (/org/freedesktop/login1/session/_32), and emits
// logind's signals as the lines of its standard input say:
//
//	lock, unlock      this user's session's Lock and Unlock
//	other-lock        the other user's session's Lock
//	hint true|false   this user's session's LockedHint (PropertiesChanged)
//	sleep, wake       the manager's PrepareForSleep(true|false)
//
// It prints "ready" once it owns the name, and "sent LINE" after each
// signal.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

const (
	name    = "org.freedesktop.login1"
	session = "org.freedesktop.login1.Session"
	manager = "org.freedesktop.login1.Manager"
	root    = dbus.ObjectPath("/org/freedesktop/login1")
	mine    = dbus.ObjectPath("/org/freedesktop/login1/session/_31")
	other   = dbus.ObjectPath("/org/freedesktop/login1/session/_32")
)

// user is the session's User property, (uo): a uid and the user's object.
type user struct {
	UID  uint32
	Path dbus.ObjectPath
}

func main() {
	conn, err := dbus.Connect(os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"))
	if err != nil {
		fail(err)
	}
	uid := uint32(os.Getuid())
	props := map[dbus.ObjectPath]*prop.Properties{}
	for path, u := range map[dbus.ObjectPath]uint32{mine: uid, other: uid + 1} {
		p, err := prop.Export(conn, path, prop.Map{session: {
			"User":       {Value: user{u, dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/login1/user/_%d", u))}},
			"LockedHint": {Value: false, Emit: prop.EmitTrue, Writable: true},
		}})
		if err != nil {
			fail(err)
		}
		props[path] = p
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		fail(fmt.Errorf("own %s: %v (reply %d)", name, err, reply))
	}
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		switch line {
		case "lock":
			err = conn.Emit(mine, session+".Lock")
		case "unlock":
			err = conn.Emit(mine, session+".Unlock")
		case "other-lock":
			err = conn.Emit(other, session+".Lock")
		case "hint true", "hint false":
			props[mine].SetMust(session, "LockedHint", line == "hint true")
		case "sleep":
			err = conn.Emit(root, manager+".PrepareForSleep", true)
		case "wake":
			err = conn.Emit(root, manager+".PrepareForSleep", false)
		default:
			err = fmt.Errorf("unknown command %q", line)
		}
		if err != nil {
			fail(err)
		}
		fmt.Println("sent " + line)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "login1:", err)
	os.Exit(1)
}
