package cli

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// progressAfter is how long a command waits in silence before it says what
// it is waiting for.
const progressAfter = time.Second

// progress shows, on a terminal's stderr, one line saying what the command
// waits for once it has waited progressAfter, or at once when the daemon
// says the request waits for the user's approval (Env.approval), updated
// as the wait goes on, and erased by the returned stop. Nothing is shown
// when stderr is not a terminal or OPX_QUIET=1.
func (e *Env) progress(what string) (stop func()) {
	f, ok := e.Stderr.(*os.File)
	if !ok || e.Quiet || os.Getenv("OPX_QUIET") == "1" || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			now := what
			if id := e.approval(); id != "" {
				now = "approval (question " + Printable(id) + "): answer with opx approve in another terminal"
			} else if time.Since(start) < progressAfter {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				continue
			}
			fmt.Fprintf(f, "\r\x1b[Kopx: waiting for %s, %.1f s", now, time.Since(start).Seconds())
			select {
			case <-done:
				fmt.Fprint(f, "\r\x1b[K")
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// waitingFor describes a request for the progress line: the backends its
// refs go to, and how many refs.
func waitingFor(refs []string) string {
	var names []string
	seen := map[string]bool{}
	for _, ref := range refs {
		name := "the backend"
		switch {
		case strings.HasPrefix(ref, "op://"):
			name = "1Password"
		case strings.HasPrefix(ref, "vault://"):
			name = "Vault"
		case strings.HasPrefix(ref, "bao://"):
			name = "OpenBao"
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	noun := "refs"
	if len(refs) == 1 {
		noun = "ref"
	}
	return fmt.Sprintf("%s: %d %s", strings.Join(names, " and "), len(refs), noun)
}
