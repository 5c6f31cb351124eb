package scrub

import "syscall"

// overwriteSignalFrame sends this thread a signal, so that the kernel writes
// a frame holding the registers as they are now (cleared) where a signal
// that came during f left one: the top of the thread's signal stack, the
// same place every time. SIGURG is what the Go runtime sends to preempt a
// thread; one that it did not ask for does nothing.
func overwriteSignalFrame() {
	syscall.Tgkill(syscall.Getpid(), syscall.Gettid(), syscall.SIGURG)
}
