package console

import "testing"

func TestLeave(t *testing.T) {
	for _, tt := range []struct {
		processes int
		window    bool
		want      bool
	}{
		{1, true, true},   // a logon task's console, a double-click's
		{2, true, false},  // typed into cmd or PowerShell: the user's
		{3, true, false},  // the same, from a script
		{1, false, false}, // autostart's console, no window: op shares it
		{0, false, false}, // no console at all
	} {
		if got := leave(tt.processes, tt.window); got != tt.want {
			t.Errorf("leave(%d, %v) = %v, want %v", tt.processes, tt.window, got, tt.want)
		}
	}
}
