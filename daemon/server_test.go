package daemon

import "testing"

// The service a daemon reports is one opx restart knows how to go through.
func TestServiceManager(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"systemd", "systemd"},
		{"launchd:homebrew.mxcl.opx", "launchd:homebrew.mxcl.opx"},
		{"schtasks", "schtasks"},
		{"schtasks:opx-authd", "schtasks:opx-authd"},
		{"", ""},
		{"runit", ""},
		{"systemd:a b", ""},
		{`schtasks:\folder\task`, ""},
	} {
		if got := serviceManager(tt.in); got != tt.want {
			t.Errorf("serviceManager(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
