package daemon

import "syscall"

// sigterm is what Go delivers on Windows for CTRL_CLOSE_EVENT,
// CTRL_LOGOFF_EVENT and CTRL_SHUTDOWN_EVENT.
const sigterm = syscall.SIGTERM
