//go:build windows

package xdg

import "path/filepath"

// socketName is, on Windows, the name of the file that tells clients where
// the daemon listens. The transport there is a named pipe (\\.\pipe\...),
// which lives outside the file system; the daemon writes the pipe's name
// into this file, in the data dir, when it starts. Paths.SocketPath and the
// lock file beside it keep their meaning on every OS.
const socketName = "pipe"

// baseDirs returns the base directories of data and configuration: the XDG
// variables when they hold absolute paths, as on Unix, else %LOCALAPPDATA%
// and %APPDATA%, else where Windows puts those two under home. There is no
// runtime directory (XDG_RUNTIME_DIR is ignored): Windows has no private
// per-login directory, and the pipe's file lives in the data dir.
func baseDirs(getenv func(string) string, home string) (data, config, runtime string) {
	data = firstAbsEnv(getenv, "XDG_DATA_HOME", "LOCALAPPDATA")
	if data == "" {
		data = filepath.Join(home, "AppData", "Local")
	}
	config = firstAbsEnv(getenv, "XDG_CONFIG_HOME", "APPDATA")
	if config == "" {
		config = filepath.Join(home, "AppData", "Roaming")
	}
	return data, config, ""
}

// firstAbsEnv is the first of the variables names that holds an absolute
// path (see absEnv), or "".
func firstAbsEnv(getenv func(string) string, names ...string) string {
	for _, name := range names {
		if v := absEnv(getenv, name); v != "" {
			return v
		}
	}
	return ""
}
