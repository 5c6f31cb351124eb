package policy

import (
	"os"
	"testing"
)

func TestReadProcessOfThisProcess(t *testing.T) {
	info, err := ReadProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	if !SamePath(info.Path, exe) || info.PPID != os.Getppid() {
		t.Errorf("ReadProcess(self) = %+v, want path %s and ppid %d", info, exe, os.Getppid())
	}
	if now := Now(); info.Start == 0 || info.Start > now {
		t.Errorf("start time %d, now %d: a running process started in the past", info.Start, now)
	}
	if os.Getppid() == 0 {
		return // wine: the parent is no Windows process
	}
	parent, err := ReadProcess(os.Getppid())
	if err != nil || parent.Start > info.Start {
		t.Errorf("parent start %d after child start %d (%v)", parent.Start, info.Start, err)
	}
}
