package masked

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)

// ioctlGetPgrp reads a terminal's foreground process group.
const ioctlGetPgrp = unix.TIOCGPGRP

// vdisable is the value of a terminal's special character that is off.
const vdisable = 0
