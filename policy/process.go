package policy

// Process is what the system says about a running process: what the policy
// judges it by. The daemon and `opx policy check` read processes with the
// same function, ReadProcess (per OS).
type Process struct {
	Path  string // its executable's real path
	PPID  int    // its parent
	Start uint64 // when it started, in the unit of Now; 0 if unknown
}
