package scrub

// overwriteSignalFrame does nothing on macOS: without cgo, Go has no call
// that signals one thread of the process.
func overwriteSignalFrame() {}
