package daemon

import (
	"testing"
	"time"
)

// consoleSessions is ioreg -n Root -d1 -a as macOS prints it (trimmed): a
// console session of uid 501, with its screen locked when locked is set,
// and one of uid 502.
func consoleSessions(locked bool) []byte {
	l := "<false/>"
	if locked {
		l = "<true/>"
	}
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0">
<dict>
	<key>IOConsoleLocked</key>
	<false/>
	<key>IOConsoleUsers</key>
	<array>
		<dict>
			<key>CGSSessionScreenIsLocked</key>
			` + l + `
			<key>kCGSSessionOnConsoleKey</key>
			<true/>
			<key>kCGSSessionUserIDKey</key>
			<integer>501</integer>
			<key>kCGSSessionUserNameKey</key>
			<string>me &amp; mine</string>
		</dict>
		<dict>
			<key>kCGSSessionUserIDKey</key>
			<integer>502</integer>
			<key>CGSSessionScreenIsLocked</key>
			<true/>
		</dict>
	</array>
	<key>IOKitBuildVersion</key>
	<string>Darwin Kernel Version 24.0.0</string>
	<key>IORegistryEntryID</key>
	<integer>4294967552</integer>
</dict>
</plist>
`)
}

// TestConsoleLocked: the console session of this user is found and its
// lock read; another user's locked session is not this user's; a
// session without the key is unlocked; garbage is an error.
func TestConsoleLocked(t *testing.T) {
	for _, tc := range []struct {
		plist         []byte
		uid           int
		locked, found bool
	}{
		{consoleSessions(true), 501, true, true},
		{consoleSessions(false), 501, false, true},
		{consoleSessions(false), 502, true, true},
		{consoleSessions(true), 503, false, false},
		{[]byte(`<plist version="1.0"><dict><key>IOConsoleUsers</key><array><dict><key>kCGSSessionUserIDKey</key><integer>501</integer></dict></array></dict></plist>`), 501, false, true},
	} {
		locked, found, err := consoleLocked(tc.plist, tc.uid)
		if err != nil || locked != tc.locked || found != tc.found {
			t.Errorf("uid %d: locked %v found %v err %v; want %v %v", tc.uid, locked, found, err, tc.locked, tc.found)
		}
	}
	for _, bad := range []string{"", "not xml", "<plist><dict><integer>1</integer></dict></plist>", "<plist><dict><key>IOConsoleUsers</key><array><integer>x</integer></array></dict></plist>"} {
		if _, _, err := consoleLocked([]byte(bad), 501); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestSleepDetector: a wall clock that moved on beyond the monotonic one
// is a sleep; looks a moment apart are not.
func TestSleepDetector(t *testing.T) {
	if !sleptDuring(65*time.Second, 2*time.Second, 4*time.Second) || sleptDuring(2*time.Second, 2*time.Second, 4*time.Second) ||
		sleptDuring(5*time.Second, 2*time.Second, 4*time.Second) {
		t.Error("sleptDuring misjudges")
	}
	var s sleepDetector
	if s.slept(time.Now(), time.Second) {
		t.Error("the first look saw a sleep")
	}
	time.Sleep(10 * time.Millisecond)
	if s.slept(time.Now(), time.Second) {
		t.Error("two looks 10 ms apart saw a sleep")
	}
}
