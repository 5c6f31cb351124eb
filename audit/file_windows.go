//go:build windows

package audit

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/windows"

	"github.com/opxhq/opx/xdg"
)

// fitFile is what unfit says the log writes to.
const fitFile = "a regular file of its own, open to no one else"

// ownership says what, beyond its kind, keeps the regular file at path from
// being the log's: another name (a hard link), or an owner or a DACL that
// lets someone else in (xdg.CheckPrivateFile); and the fix. "" means
// nothing does. fi holds neither the owner nor the link count on Windows,
// so the file is opened again to read them, without following a reparse
// point; euid means nothing there.
func ownership(path string, _ os.FileInfo, _ int) (what, fix string) {
	f, err := xdg.OpenPrivate(path, os.O_RDONLY)
	if err != nil {
		return fmt.Sprintf("cannot be checked (%v)", err), "remove it"
	}
	defer f.Close()
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(f.Fd()), &info); err != nil {
		return fmt.Sprintf("cannot be checked (%v)", err), "remove it"
	}
	switch {
	case info.FileAttributes&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		return "is a reparse point (a link)", "remove it"
	case info.NumberOfLinks != 1:
		return fmt.Sprintf("has %d hard links", info.NumberOfLinks), "remove it"
	}
	var np *xdg.NotPrivateError
	switch err := xdg.CheckPrivateFile(f); {
	case errors.As(err, &np):
		return np.Fault, np.Fix + ", or remove it"
	case err != nil:
		return fmt.Sprintf("cannot be checked (%v)", err), "remove it"
	}
	return "", ""
}
