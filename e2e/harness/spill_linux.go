package harness

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// SpillRegisters sends every thread of process pid a SIGURG, so that the
// kernel saves each thread's registers in a signal frame in the process's
// memory, as the next signal to reach the thread would, and a scan sees
// what they hold. SIGURG is what the Go runtime sends to preempt a thread;
// one that it did not ask for does nothing.
func SpillRegisters(pid int) error {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil {
			syscall.Tgkill(pid, tid, syscall.SIGURG)
		}
	}
	// A sleeping thread takes the signal once the kernel has woken it.
	time.Sleep(20 * time.Millisecond)
	return nil
}
