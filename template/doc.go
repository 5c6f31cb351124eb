// Package template finds the secret references in text the way 1Password's
// op does: the template syntax of op inject (and opx inject), and the
// variables ($NAME, ${NAME}, ${NAME:-default}) a reference may hold, which
// the client expands before it sends anything to the daemon.
package template
