// Command askpass is a test askpass program for opx's approval tests: it
// answers as OpenSSH's SSH_ASKPASS does with SSH_ASKPASS_PROMPT=confirm
// (exit status 0 is yes), from a file, and records what it was asked.
//
// The daemon starts it with a fixed environment, so its files are found
// beside its own executable, not through variables:
//
//	EXE.answer  "yes", "no", or "wait" (never answers: it is killed); an
//	            optional second line is a Go duration to wait first
//	EXE.log     gets one JSON line per question: {"args": [...], "env":
//	            [...], "pid": N}
package main

import (
	"encoding/json"
	"os"
	"strings"
	"time"
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		os.Exit(2)
	}
	if f, err := os.OpenFile(exe+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		line, _ := json.Marshal(map[string]any{"args": os.Args[1:], "env": os.Environ(), "pid": os.Getpid()})
		f.Write(append(line, '\n'))
		f.Close()
	}
	b, _ := os.ReadFile(exe + ".answer")
	answer, wait, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if d, err := time.ParseDuration(strings.TrimSpace(wait)); err == nil {
		time.Sleep(d)
	}
	switch strings.TrimSpace(answer) {
	case "yes":
		os.Exit(0)
	case "wait":
		time.Sleep(time.Hour)
	}
	os.Exit(1)
}
