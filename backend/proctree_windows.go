package backend

import (
	"fmt"
	"os/exec"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// runTree runs cmd in a job object of its own, which cmd's context, when
// done, terminates whole: op and every process it started. The job also
// goes when runTree returns or the daemon dies (KILL_ON_JOB_CLOSE), so no
// op outlives the call that started it.
//
// cmd starts suspended and runs only once it is in the job, so that nothing
// it starts can escape it; a process of a job has its children in it too.
func runTree(cmd *exec.Cmd) error {
	job, err := newKillJob()
	if err != nil {
		return fmt.Errorf("create a job object for op: %w", err)
	}
	defer windows.CloseHandle(job)
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.CreationFlags |= windows.CREATE_SUSPENDED
	cmd.Cancel = func() error { return windows.TerminateJobObject(job, 1) }
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := joinAndResume(job, cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("put op in its job object: %w", err)
	}
	return cmd.Wait()
}

// newKillJob creates a job object whose processes all end when its last
// handle closes.
func newKillJob() (windows.Handle, error) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		return 0, err
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
		uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		windows.CloseHandle(job)
		return 0, err
	}
	return job, nil
}

// ntResumeProcess resumes every thread of a process: os/exec keeps the
// handle of a suspended process's first thread to itself.
var ntResumeProcess = windows.NewLazySystemDLL("ntdll.dll").NewProc("NtResumeProcess")

// joinAndResume puts the suspended process pid in job and lets it run.
func joinAndResume(job windows.Handle, pid int) error {
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE|windows.PROCESS_SUSPEND_RESUME,
		false, uint32(pid))
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		return err
	}
	if status, _, _ := ntResumeProcess.Call(uintptr(h)); status != 0 {
		return fmt.Errorf("NtResumeProcess: %w", windows.NTStatus(status))
	}
	return nil
}

// killedBy reports false: Windows ends processes with an exit code, never a
// signal (a terminated job's processes exit with status 1).
func killedBy(*exec.ExitError) (syscall.Signal, bool) { return 0, false }
