// Package scrub clears the copies of secrets that copying leaves outside
// the buffers a program owns and zeroes (docs/architecture.md, Rules).
//
// Zeroing a buffer does not zero every copy of its bytes. memmove carries
// what it copies through registers (on amd64 the vector registers X0-X15,
// which keep up to the last 128 bytes of any copy over 128 bytes) and
// leaves it there until other code reuses them, which may be long after.
// When a signal reaches the thread (SIGCHLD at every exit of a child,
// SIGURG when the runtime preempts), the kernel saves every register in a
// frame on the thread's signal stack: memory nobody zeroes, where a value
// stays until the next signal to that thread writes over it.
//
// Go has the same in runtime/secret, which also stops the runtime from
// preempting the function asynchronously (it would save the registers in
// its per-P scratch space); it needs GOEXPERIMENT=runtimesecret.
package scrub

import "runtime"

// Do runs f, which copies secrets, locked to one OS thread, and then clears
// what f's copies may have left on it outside the heap: the registers, the
// stack below the caller, and the thread's last signal frame. Goroutines
// that f starts are not covered; nor is the copy of the registers that the
// runtime saves when it preempts f asynchronously (rare, as f runs for
// microseconds between its waits), which stays until the next such
// preemption on that P.
func Do(f func()) {
	runtime.LockOSThread()
	defer func() {
		clearRegisters(256)
		clearStack(0)
		overwriteSignalFrame()
		runtime.UnlockOSThread()
	}()
	// Grow the stack before f runs: a stack that grows inside f is copied
	// to a larger one, and the old one freed as it is.
	clearStack(0)
	f()
}

// clearRegisters copies n zero bytes with memmove, which, for 129 to 256
// bytes, loads them into every register it copies through: all sixteen
// vector registers on amd64, the general registers it uses on arm64. n is
// an argument so that the copy is a call to memmove, not inlined stores.
//
//go:noinline
func clearRegisters(n int) byte {
	var src, dst [256]byte
	copy(dst[:n], src[:n])
	return dst[n-1]
}

// clearStack zeroes 16 KiB of the goroutine's stack below the caller's
// frame, where the frames of what it called before lay.
//
//go:noinline
func clearStack(i int) byte {
	var b [16 << 10]byte // zeroed on entry
	return b[i]
}
