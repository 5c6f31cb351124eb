package cli

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"unicode/utf16"
)

// parsedTask is what Task Scheduler acts on in a definition, read back
// with encoding/xml by paths written out here (not ScheduledTask's types).
type parsedTask struct {
	XMLName   xml.Name
	Version   string   `xml:"version,attr"`
	Triggers  []string `xml:"Triggers>LogonTrigger>UserId"`
	Enabled   string   `xml:"Triggers>LogonTrigger>Enabled"`
	Principal struct {
		ID        string `xml:"id,attr"`
		UserID    string `xml:"UserId"`
		LogonType string `xml:"LogonType"`
		RunLevel  string `xml:"RunLevel"`
	} `xml:"Principals>Principal"`
	Settings struct {
		MultipleInstancesPolicy    string
		DisallowStartIfOnBatteries string
		StopIfGoingOnBatteries     string
		ExecutionTimeLimit         string
		Hidden                     string
		Enabled                    string
		Priority                   string
		Interval                   string `xml:"RestartOnFailure>Interval"`
		Count                      string `xml:"RestartOnFailure>Count"`
	}
	Actions struct {
		Context string   `xml:"Context,attr"`
		Execs   []string `xml:"Exec>Command"`
		Args    []string `xml:"Exec>Arguments"`
	}
}

func parseTask(t *testing.T, text string) parsedTask {
	t.Helper()
	var p parsedTask
	d := xml.NewDecoder(strings.NewReader(text))
	// taskFile's text is decoded already; its declaration still says UTF-16.
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	if err := d.Decode(&p); err != nil {
		t.Fatalf("the task is not well-formed XML: %v\n%s", err, text)
	}
	return p
}

const testSID = "S-1-5-21-1004336348-1177238915-682003330-1001"

func TestServiceTaskStartsTheDaemonAtThisUsersLogon(t *testing.T) {
	exe := `C:\Users\Zoë O'Neil & Co\scoop\apps\opx\current\opx.exe`
	def, err := ScheduledTask(exe, testSID, []string{"--ttl=60s", `--op-path=C:\Program Files\1Password CLI\op.exe`})
	if err != nil {
		t.Fatal(err)
	}
	p := parseTask(t, taskText(def))
	if p.XMLName.Space != taskSchema || p.XMLName.Local != "Task" || p.Version != "1.2" {
		t.Errorf("root = {%s}%s version %q, want {%s}Task version 1.2", p.XMLName.Space, p.XMLName.Local, p.Version, taskSchema)
	}
	if len(p.Triggers) != 1 || p.Triggers[0] != testSID || p.Enabled != "true" {
		t.Errorf("logon triggers for %q (enabled %q), want one, for %s, enabled", p.Triggers, p.Enabled, testSID)
	}
	pr := p.Principal
	if pr.UserID != testSID || pr.LogonType != "InteractiveToken" || pr.RunLevel != "LeastPrivilege" || pr.ID != p.Actions.Context || p.Actions.Context == "" {
		t.Errorf("principal = %+v, actions' context %q; want the user, InteractiveToken (no stored password), LeastPrivilege, the actions' context", pr, p.Actions.Context)
	}
	s := p.Settings
	for _, c := range []struct{ name, got, want string }{
		{"MultipleInstancesPolicy", s.MultipleInstancesPolicy, "IgnoreNew"},
		{"DisallowStartIfOnBatteries", s.DisallowStartIfOnBatteries, "false"},
		{"StopIfGoingOnBatteries", s.StopIfGoingOnBatteries, "false"},
		{"ExecutionTimeLimit", s.ExecutionTimeLimit, "PT0S"},
		{"Hidden", s.Hidden, "false"},
		{"Enabled", s.Enabled, "true"},
		{"Priority", s.Priority, "5"},
		{"RestartOnFailure>Interval", s.Interval, "PT1M"},
		{"RestartOnFailure>Count", s.Count, "3"},
	} {
		if c.got != c.want {
			t.Errorf("Settings>%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if len(p.Actions.Execs) != 1 || p.Actions.Execs[0] != exe {
		t.Errorf("Exec commands = %q, want [%q]", p.Actions.Execs, exe)
	}
	want := `daemon --service=schtasks --ttl=60s "--op-path=C:\Program Files\1Password CLI\op.exe"`
	if len(p.Actions.Args) != 1 || p.Actions.Args[0] != want {
		t.Errorf("Exec arguments = %q, want [%q]", p.Actions.Args, want)
	}
	// The & of the path is escaped in the text, not only read back right.
	if !strings.Contains(def, ` &amp; Co\`) {
		t.Errorf("the path's & is not escaped in the XML:\n%s", def)
	}
}

func TestServiceTaskEscapesXML(t *testing.T) {
	args := []string{`--x=<a href="b">&amp;</a>`, "]]>"}
	def, err := ScheduledTask(`C:\a&b\opx.exe`, testSID, args)
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"<a", "&amp;</", "a&b"} {
		if strings.Contains(def, raw) {
			t.Errorf("the XML holds %q unescaped:\n%s", raw, def)
		}
	}
	p := parseTask(t, taskText(def))
	want := `daemon --service=schtasks "--x=<a href=\"b\">&amp;</a>" ]]>`
	if len(p.Actions.Args) != 1 || p.Actions.Args[0] != want || p.Actions.Execs[0] != `C:\a&b\opx.exe` {
		t.Errorf("read back: command %q, arguments %q; want %q, %q", p.Actions.Execs, p.Actions.Args, `C:\a&b\opx.exe`, want)
	}
}

func TestWindowsArgQuoting(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"daemon", "daemon"},
		{"--ttl=60s", "--ttl=60s"},
		{`C:\dir\op.exe`, `C:\dir\op.exe`},
		{"", `""`},
		{"a b", `"a b"`},
		{"a\tb", "\"a\tb\""},
		{`a"b`, `"a\"b"`},
		{`C:\Program Files\`, `"C:\Program Files\\"`},
		{`a\"b c`, `"a\\\"b c"`},
		{`a\\b c`, `"a\\b c"`},
		{`\\server\share\a b`, `"\\server\share\a b"`},
	} {
		if got := windowsArg(tt.in); got != tt.want {
			t.Errorf("windowsArg(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestServiceTaskRefusesWhatItCannotCarry(t *testing.T) {
	for _, tt := range []struct {
		exe  string
		args []string
		want string
	}{
		{`C:\opx.exe`, []string{"--op-path=%USERPROFILE%\\op.exe"}, "would expand %NAME%"},
		{`C:\100%\opx.exe`, nil, "would expand"},
		{`C:\opx.exe`, []string{"--ttl=60s\n--backend=fake"}, "control character"},
		{`C:\opx.exe`, []string{"a\x00b"}, "control character"},
		{`C:\opx.exe`, []string{"\xff"}, "not UTF-8"},
	} {
		if _, err := ScheduledTask(tt.exe, testSID, tt.args); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ScheduledTask(%q, %q) error = %v, want one saying %q", tt.exe, tt.args, err, tt.want)
		}
	}
}

// schtasks /Create /XML reads the file as schtasks /Query /XML writes one:
// UTF-16LE with a byte order mark, a declaration saying so, CRLF lines.
func TestServiceTaskFileIsUTF16(t *testing.T) {
	def, err := ScheduledTask(`C:\Users\Zoë\opx.exe`, testSID, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := taskFile(def)
	if !bytes.HasPrefix(b, []byte{0xff, 0xfe}) || len(b)%2 != 0 {
		t.Fatalf("file starts % x, length %d; want the UTF-16LE BOM ff fe and whole code units", b[:min(4, len(b))], len(b))
	}
	units := make([]uint16, 0, len(b)/2-1)
	for i := 2; i < len(b); i += 2 {
		units = append(units, uint16(b[i])|uint16(b[i+1])<<8)
	}
	text := string(utf16.Decode(units))
	if !strings.HasPrefix(text, `<?xml version="1.0" encoding="UTF-16"?>`+"\r\n<Task ") {
		t.Errorf("file text starts %q, want the UTF-16 declaration, CRLF, <Task", text[:min(60, len(text))])
	}
	if strings.Count(text, "\n") != strings.Count(text, "\r\n") {
		t.Errorf("file has lines that do not end in CRLF")
	}
	if p := parseTask(t, text); len(p.Actions.Execs) != 1 || p.Actions.Execs[0] != `C:\Users\Zoë\opx.exe` {
		t.Errorf("command read back from the file = %q", p.Actions.Execs)
	}
	if printed := taskText(def); !strings.HasPrefix(printed, "<?xml version=\"1.0\"?>\n<Task ") {
		t.Errorf("--print's text starts %q, want a declaration naming no encoding", printed[:min(40, len(printed))])
	}
}
