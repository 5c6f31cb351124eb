package cli

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The daemon as a Windows scheduled task: the Task Scheduler definition
// opx service install registers with schtasks. It is built here on every
// OS, so that its tests run wherever the others do.

// taskName is the scheduled task opx service install registers on Windows
// (schtasks /TN), in the root folder of the user's Task Scheduler library.
const taskName = "opx-authd"

// taskSchema is Task Scheduler's XML namespace, which schtasks requires of
// a definition (an identifier of the format; nothing is fetched from it).
const taskSchema = "http://schemas.microsoft.com/windows/2004/02/mit/task"

// scheduledTask is the Task Scheduler definition, as much of its schema
// (version 1.2, Windows Vista and later) as opx sets. The children of Task
// and of Settings may come in any order (xs:all).
type scheduledTask struct {
	XMLName     xml.Name      `xml:"http://schemas.microsoft.com/windows/2004/02/mit/task Task"`
	Version     string        `xml:"version,attr"`
	Description string        `xml:"RegistrationInfo>Description"`
	Trigger     logonTrigger  `xml:"Triggers>LogonTrigger"`
	Principal   taskPrincipal `xml:"Principals>Principal"`
	Settings    taskSettings  `xml:"Settings"`
	Actions     taskActions   `xml:"Actions"`
}

type logonTrigger struct {
	Enabled bool   `xml:"Enabled"`
	UserID  string `xml:"UserId"` // only this user's logon starts the task
}

type taskPrincipal struct {
	ID        string `xml:"id,attr"`
	UserID    string `xml:"UserId"`
	LogonType string `xml:"LogonType"`
	RunLevel  string `xml:"RunLevel"`
}

type taskSettings struct {
	MultipleInstancesPolicy    string       `xml:"MultipleInstancesPolicy"`
	DisallowStartIfOnBatteries bool         `xml:"DisallowStartIfOnBatteries"`
	StopIfGoingOnBatteries     bool         `xml:"StopIfGoingOnBatteries"`
	AllowHardTerminate         bool         `xml:"AllowHardTerminate"`
	AllowStartOnDemand         bool         `xml:"AllowStartOnDemand"`
	Enabled                    bool         `xml:"Enabled"`
	Hidden                     bool         `xml:"Hidden"`
	ExecutionTimeLimit         string       `xml:"ExecutionTimeLimit"`
	Priority                   int          `xml:"Priority"`
	RestartOnFailure           restartAfter `xml:"RestartOnFailure"`
}

type restartAfter struct {
	Interval string `xml:"Interval"`
	Count    int    `xml:"Count"`
}

type taskActions struct {
	Context string   `xml:"Context,attr"` // the principal the actions run as
	Exec    taskExec `xml:"Exec"`
}

type taskExec struct {
	Command   string `xml:"Command"`
	Arguments string `xml:"Arguments"`
}

// ScheduledTask is the Task Scheduler definition (XML, without its
// declaration) that runs exe as the daemon when the user whose SID is
// userSID logs on, with args as the daemon's flags:
//
//   - a logon trigger for that user only, and the user as principal with an
//     interactive token at least privilege: the daemon runs in the user's
//     session, as the user, as 1Password's desktop integration needs it, with
//     no password stored and no administrator;
//   - it starts and keeps running on battery power (the defaults would
//     leave a laptop without a daemon), has no time limit, runs at normal
//     priority (the default, 7, is below normal, and op would inherit it),
//     and Task Scheduler tries again to start it when that fails;
//   - the command line is exe with `daemon --service=schtasks` and args,
//     each quoted as Windows programs split a command line.
//
// Task Scheduler expands %NAME% in a task's command with no way to escape
// it, so a '%' in exe or args is refused, as are control characters.
func ScheduledTask(exe, userSID string, args []string) (string, error) {
	argv := append([]string{"daemon", "--service=schtasks"}, args...)
	for _, a := range append([]string{exe, userSID}, argv...) {
		if err := taskSafe(a); err != nil {
			return "", err
		}
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = windowsArg(a)
	}
	task := scheduledTask{
		Version:     "1.2",
		Description: "opx secrets broker daemon, started at logon (opx service install)",
		Trigger:     logonTrigger{Enabled: true, UserID: userSID},
		Principal:   taskPrincipal{ID: "Author", UserID: userSID, LogonType: "InteractiveToken", RunLevel: "LeastPrivilege"},
		Settings: taskSettings{
			MultipleInstancesPolicy: "IgnoreNew",
			AllowHardTerminate:      true,
			AllowStartOnDemand:      true,
			Enabled:                 true,
			ExecutionTimeLimit:      "PT0S",
			Priority:                5,
			RestartOnFailure:        restartAfter{Interval: "PT1M", Count: 3},
		},
		Actions: taskActions{Context: "Author", Exec: taskExec{Command: exe, Arguments: strings.Join(quoted, " ")}},
	}
	out, err := xml.MarshalIndent(task, "", "  ")
	if err != nil {
		return "", err
	}
	return string(out) + "\n", nil
}

// taskSafe refuses what a task's XML or command line cannot carry as it is.
func taskSafe(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not UTF-8: a scheduled task cannot carry it", s)
	}
	if strings.ContainsRune(s, '%') {
		return fmt.Errorf("%q holds a %%: Task Scheduler would expand %%NAME%% in it, and has no escape for it", s)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%q holds a control character: a scheduled task's command line cannot carry it", s)
		}
	}
	return nil
}

// windowsArg quotes s as Windows programs (the C runtime's rules, and Go's
// os.Args) split a command line into arguments: plain words stay as they
// are; the rest go in double quotes, with a backslash before each quote
// inside and the backslashes that precede a quote, or the closing one,
// doubled.
func windowsArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\"") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	slashes := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			slashes++
		case '"':
			b.WriteString(strings.Repeat(`\`, 2*slashes+1))
			b.WriteByte('"')
			slashes = 0
		default:
			b.WriteString(strings.Repeat(`\`, slashes))
			b.WriteByte(c)
			slashes = 0
		}
	}
	b.WriteString(strings.Repeat(`\`, 2*slashes))
	b.WriteByte('"')
	return b.String()
}

// taskText is the definition as --print shows it: UTF-8, with a
// declaration that names no encoding, so that the text stays right when a
// shell saves it as UTF-16 (PowerShell 5's >) for schtasks /XML.
func taskText(def string) string {
	return `<?xml version="1.0"?>` + "\n" + def
}

// taskFile is the definition as schtasks /Create /XML reads it and
// schtasks /Query /XML writes it: UTF-16LE with a byte order mark, its
// lines ending in CRLF.
func taskFile(def string) []byte {
	text := `<?xml version="1.0" encoding="UTF-16"?>` + "\n" + def
	text = strings.ReplaceAll(text, "\n", "\r\n")
	var b bytes.Buffer
	b.Write([]byte{0xff, 0xfe})
	for _, u := range utf16.Encode([]rune(text)) {
		b.WriteByte(byte(u))
		b.WriteByte(byte(u >> 8))
	}
	return b.Bytes()
}
