// Package console owns what the daemon does about a Windows console: it
// leaves a console window that was made only for it (a logon task's, a
// double-click's), logging to its log file instead, and then starts its
// console children (op) without a window of their own. Elsewhere it does
// nothing.
package console

// leave reports whether a daemon should let go of its console: it is the
// console's only process (nobody typed the command into it, and nobody
// else reads it) and the console shows a window. A console another process
// shares (cmd, PowerShell, a terminal) is the user's; one with no window
// (autostart's, CREATE_NO_WINDOW) shows nothing and lets op share it.
func leave(processes int, window bool) bool {
	return processes == 1 && window
}
