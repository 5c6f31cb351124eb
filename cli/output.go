package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/opxhq/opx/client"
	"github.com/opxhq/opx/xdg"
)

// FileOutput is the flags of a command that can write its secrets to a
// file instead of stdout.
type FileOutput struct {
	FileMode string `name:"file-mode" default:"0600" help:"Mode of the file that --out-file writes (octal; default ${default})." placeholder:"MODE"`
	Force    bool   `short:"f" help:"Overwrite the --out-file file without asking."`
}

// mode parses --file-mode.
func (o *FileOutput) mode() (os.FileMode, error) {
	m, err := strconv.ParseUint(strings.TrimPrefix(o.FileMode, "0o"), 8, 32)
	if err != nil || m > 0o777 {
		return 0, &client.Error{Message: fmt.Sprintf("--file-mode %q: want an octal mode such as 0600", o.FileMode)}
	}
	return os.FileMode(m), nil
}

// check refuses, before anything is read, what write would refuse after:
// a bad mode, or an existing file the user does not want replaced.
func (o *FileOutput) check(env *Env, path string) error {
	if _, err := o.mode(); err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &client.Error{Message: fmt.Sprintf("%s: %v", path, err), Err: err}
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return &client.Error{Message: fmt.Sprintf("%s is a symbolic link", path), Hint: "give the file it points to: opx replaces the file at the path it is given"}
	case !fi.Mode().IsRegular():
		return &client.Error{Message: fmt.Sprintf("%s is not a regular file", path)}
	}
	if o.Force {
		return nil
	}
	if !env.interactive() {
		return &client.Error{Message: fmt.Sprintf("%s exists", path), Hint: "add --force to replace it"}
	}
	fmt.Fprintf(env.Stderr, "opx: %s exists. Replace it? [y/N] ", Printable(path))
	var answer string
	fmt.Fscanln(env.Stdin, &answer)
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return &client.Error{Message: fmt.Sprintf("%s left as it was", path)}
	}
	o.Force = true
	return nil
}

// WriteFile puts data in path atomically (a temporary file in the same
// directory, flushed, then renamed over path) with the --file-mode mode.
// Unless replacing was allowed (--force, or a yes), a file that appeared
// at path since check is left alone: the temporary file is linked into
// place, which never replaces anything.
func (o *FileOutput) WriteFile(path string, data []byte) error {
	mode, err := o.mode()
	if err != nil {
		return err
	}
	if o.Force {
		err = xdg.WriteFileAtomic(path, data, mode)
	} else {
		err = xdg.WriteFileNew(path, data, mode)
	}
	if errors.Is(err, fs.ErrExist) {
		return &client.Error{Message: fmt.Sprintf("%s appeared while opx was reading; left as it is", path), Hint: "add --force to replace it"}
	}
	if err != nil {
		return &client.Error{Message: err.Error(), Err: err}
	}
	return nil
}
