//go:build unix

package xdg

import "path/filepath"

// socketName is the socket's file name inside its directory.
const socketName = "socket.sock"

// baseDirs returns the base directories of data and configuration, and the
// runtime directory ("" when there is none): the XDG variables, or the
// spec's defaults under home.
func baseDirs(getenv func(string) string, home string) (data, config, runtime string) {
	return baseDir(getenv, "XDG_DATA_HOME", home, ".local", "share"),
		baseDir(getenv, "XDG_CONFIG_HOME", home, ".config"),
		absEnv(getenv, "XDG_RUNTIME_DIR")
}

// baseDir is the XDG base directory in the variable name, or home joined
// with the spec's default when the variable is unusable.
func baseDir(getenv func(string) string, name, home string, def ...string) string {
	if v := absEnv(getenv, name); v != "" {
		return v
	}
	return filepath.Join(append([]string{home}, def...)...)
}
