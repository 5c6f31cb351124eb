package scrub

// overwriteSignalFrame does nothing on Windows: there are no signals, so no
// frame on a signal stack; the runtime preempts a thread by suspending it
// and reading its registers (GetThreadContext), a copy Do does not cover,
// as it does not cover asynchronous preemption elsewhere.
func overwriteSignalFrame() {}
