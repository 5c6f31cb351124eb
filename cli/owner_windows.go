package cli

import "io/fs"

// ownerOf reports false: a file's owner on Windows is a SID in its security
// descriptor, which the xdg package checks (with the DACL) where it matters.
func ownerOf(fs.FileInfo) (int, bool) { return 0, false }

// rootOwned reports false: Windows has no root to own a link; a rule's
// program there is judged by its own path.
func rootOwned(string) bool { return false }
