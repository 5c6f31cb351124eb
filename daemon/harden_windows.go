package daemon

import (
	"fmt"

	"golang.org/x/sys/windows"
)

// harden keeps secrets away from other processes of the same user, as far
// as Windows lets a process do so for itself: its DACL is replaced by one
// that grants SYSTEM everything and the user only to query it, wait for
// it and end it (Task Manager's End task), with an OWNER RIGHTS entry so
// that its owner's implicit right to read and rewrite the DACL is these
// same rights and no more. So a process of the user cannot open the daemon
// to read or write its memory, create a thread in it or duplicate its
// handles: Task Manager's "Create dump file", procdump and a debugger run
// without privileges are refused. It does not stop an administrator (the
// debug privilege passes any DACL), nor a same-user process that attacks
// the daemon's threads (they keep the token's default DACL) or the files
// it runs from; docs/security.md says so. Windows writes no core file of a
// Go program that crashes (the runtime prints the panic, which shows no
// values: debug.SetTraceback("none"), and exits).
func harden() error {
	me, err := currentSID()
	if err != nil {
		return err
	}
	sd, err := windows.SecurityDescriptorFromString(hardenedDACL(me))
	if err != nil {
		return fmt.Errorf("make the process's DACL: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("make the process's DACL: %w", err)
	}
	return windows.SetSecurityInfo(windows.CurrentProcess(), windows.SE_KERNEL_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
}

// hardenedDACL is harden's DACL, in SDDL, for the user SID me: SYSTEM all
// (PROCESS_ALL_ACCESS); the user, and the owner (OW, OWNER RIGHTS, which
// replaces the owner's implicit READ_CONTROL and WRITE_DAC), only what
// os.FindProcess and Task Manager ask for: PROCESS_TERMINATE 0x1,
// PROCESS_QUERY_INFORMATION 0x400, PROCESS_QUERY_LIMITED_INFORMATION
// 0x1000, READ_CONTROL 0x20000 and SYNCHRONIZE 0x100000. Left out:
// PROCESS_VM_READ and _WRITE, _VM_OPERATION, _CREATE_THREAD, _DUP_HANDLE,
// _SET_INFORMATION, _SUSPEND_RESUME, WRITE_DAC, WRITE_OWNER.
func hardenedDACL(me string) string {
	const userRights = "0x121401"
	return "D:P(A;;0x1FFFFF;;;SY)(A;;" + userRights + ";;;OW)(A;;" + userRights + ";;;" + me + ")"
}
