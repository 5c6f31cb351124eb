package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// CompletionCmd is `opx completion bash|zsh|fish`: a completion script made
// from the command grammar itself, so it never falls behind it.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"Shell: ${enum}."`
	// Values is what the scripts call at completion time for values that
	// change (accounts); not for people.
	Values string `hidden:"" enum:",accounts" default:""`
}

// What a flag's value or a positional argument completes to. A kind is one
// of these, or "enum:" followed by the values, space-separated.
const (
	kindNone     = ""
	kindFiles    = "files"
	kindAccounts = "accounts"
	kindProgram  = "program" // a program on PATH, then its arguments (files)
)

// flagSpec is one flag of a command, for the scripts.
type flagSpec struct {
	long, short string // "--out-file", "-o" ("" when none)
	help        string
	value       bool   // takes a value
	kind        string // what the value completes to
	repeat      bool   // may be given more than once
}

// argSpec is one positional argument.
type argSpec struct {
	name     string
	kind     string
	variadic bool
}

// node is one command of the grammar, for the scripts.
type node struct {
	path  string // "login vault"
	help  string
	subs  []*node
	flags []flagSpec
	args  []argSpec
}

// kindOf says what v completes to: a complete:"..." tag, its enum, a file
// (type:"path", or a FILE or PATH placeholder), an account, or nothing.
func kindOf(v *kong.Value, placeholder string) string {
	if v.Tag != nil {
		switch k := v.Tag.Get("complete"); k {
		case "commands":
			return "enum:" + strings.Join(commandNames, " ")
		case "":
		default:
			return k
		}
	}
	switch {
	case v.Enum != "":
		var vals []string
		for _, e := range v.EnumSlice() {
			if e != "" {
				vals = append(vals, e)
			}
		}
		return "enum:" + strings.Join(vals, " ")
	case v.Tag != nil && v.Tag.Type == "path", placeholder == "FILE", placeholder == "PATH":
		return kindFiles
	case v.Name == "account":
		return kindAccounts
	}
	return kindNone
}

// commandNames are opx's commands, for `opx help <TAB>`; set by walk.
var commandNames []string

func walk(n *kong.Node, path string, inherited []*kong.Flag) *node {
	out := &node{path: path, help: n.Help}
	flags := append(append([]*kong.Flag(nil), inherited...), n.Flags...)
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		fs := flagSpec{long: "--" + f.Name, help: f.Help, value: !f.IsBool() && !f.IsCounter(), repeat: f.IsSlice()}
		if f.Short != 0 {
			fs.short = "-" + string(f.Short)
		}
		if fs.value {
			fs.kind = kindOf(f.Value, f.PlaceHolder)
		}
		out.flags = append(out.flags, fs)
		if f.Tag != nil && f.Tag.Negatable != "" {
			out.flags = append(out.flags, flagSpec{long: "--no-" + f.Name, help: f.Help})
		}
	}
	for _, p := range n.Positional {
		out.args = append(out.args, argSpec{name: p.Name, kind: kindOf(p, ""), variadic: p.IsSlice()})
	}
	if path == "" { // every name, before a command (help) asks for them
		commandNames = commandNames[:0]
		for _, c := range n.Children {
			if !c.Hidden && c.Type == kong.CommandNode {
				commandNames = append(commandNames, c.Name)
			}
		}
	}
	for _, c := range n.Children {
		if c.Hidden || c.Type != kong.CommandNode {
			continue
		}
		p := c.Name
		if path != "" {
			p = path + " " + c.Name
		}
		out.subs = append(out.subs, walk(c, p, flags))
	}
	return out
}

func (n *node) all() []*node {
	out := []*node{n}
	for _, s := range n.subs {
		out = append(out, s.all()...)
	}
	return out
}

// name is the last word of the node's path.
func (n *node) name() string { return n.path[strings.LastIndexByte(n.path, ' ')+1:] }

func (n *node) subNames() []string {
	var names []string
	for _, s := range n.subs {
		names = append(names, s.name())
	}
	sort.Strings(names)
	return names
}

func (n *node) flagNames() []string {
	var names []string
	for _, f := range n.flags {
		names = append(names, f.long)
		if f.short != "" {
			names = append(names, f.short)
		}
	}
	return names
}

// Run prints the script (or, for the scripts themselves, the values asked).
func (c *CompletionCmd) Run(ctx *kong.Context, env *Env) error {
	if c.Values == kindAccounts {
		for _, a := range knownAccounts(env.Paths.ConfigFile) {
			fmt.Fprintln(env.Stdout, a)
		}
		return nil
	}
	root := walk(ctx.Model.Node, "", nil)
	var s string
	switch c.Shell {
	case "bash":
		s = bashScript(root)
	case "zsh":
		s = zshScript(root)
	case "fish":
		s = fishScript(root)
	}
	_, err := fmt.Fprint(env.Stdout, s)
	return err
}

// knownAccounts are the accounts a user may mean: opx's default account
// (config.json) and the accounts the 1Password CLI is set up for (the
// shorthands in its own config file).
func knownAccounts(configFile string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(a string) {
		if a != "" && !seen[a] && !strings.ContainsAny(a, " \t\n'\"\\$`") {
			seen[a] = true
			out = append(out, a)
		}
	}
	var cfg struct {
		Account string `json:"account"`
	}
	if b, err := os.ReadFile(configFile); err == nil && json.Unmarshal(b, &cfg) == nil {
		add(cfg.Account)
	}
	var dirs []string
	if d := os.Getenv("OP_CONFIG_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if home, err := os.UserHomeDir(); err == nil {
		xdgConfig := os.Getenv("XDG_CONFIG_HOME")
		if xdgConfig == "" {
			xdgConfig = filepath.Join(home, ".config")
		}
		dirs = append(dirs, filepath.Join(xdgConfig, "op"), filepath.Join(home, ".op"), filepath.Join(home, ".config", "op"))
	}
	for _, d := range dirs {
		var op struct {
			Accounts []struct {
				Shorthand string `json:"shorthand"`
			} `json:"accounts"`
		}
		if b, err := os.ReadFile(filepath.Join(d, "config")); err == nil && json.Unmarshal(b, &op) == nil {
			for _, a := range op.Accounts {
				add(a.Shorthand)
			}
		}
	}
	sort.Strings(out)
	return out
}

// shq quotes s for sh-like shells (bash, zsh, fish: single quotes; a single
// quote inside is closed, escaped and reopened, which fish reads too).
func shq(s string) string {
	if strings.ContainsRune(s, '\'') {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return "'" + s + "'"
}

// fishq quotes s for fish, in whose single quotes a backslash escapes a
// backslash or a quote.
func fishq(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func bashScript(root *node) string {
	var b strings.Builder
	b.WriteString(`# bash completion for opx; load with: source <(opx completion bash)
_opx_values() {
  case "$1" in
    files) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")) ;;
    accounts) COMPREPLY=($(compgen -W "$(command opx completion bash --values=accounts 2>/dev/null)" -- "$cur")) ;;
    program) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -c -- "$cur")) ;;
    enum:*) COMPREPLY=($(compgen -W "${1#enum:}" -- "$cur")) ;;
    *) COMPREPLY=() ;;
  esac
}
# _opx_flag PATH FLAG prints what FLAG's value completes to and succeeds
# when FLAG takes a value.
_opx_flag() {
  case "$1 $2" in
`)
	for _, n := range root.all() {
		for _, f := range n.flags {
			if !f.value {
				continue
			}
			pat := shq(n.path + " " + f.long)
			if f.short != "" {
				pat += "|" + shq(n.path+" "+f.short)
			}
			fmt.Fprintf(&b, "    %s) echo %s ;;\n", pat, shq(f.kind))
		}
	}
	b.WriteString(`    *) return 1 ;;
  esac
}
# _opx_arg PATH N prints what the command's Nth positional argument
# completes to.
_opx_arg() {
  case "$1:$2" in
`)
	for _, n := range root.all() {
		for i, a := range n.args {
			switch {
			case a.kind == kindProgram:
				fmt.Fprintf(&b, "    %s) echo program ;;\n    %s*) echo files ;;\n", shq(n.path+":"+fmt.Sprint(i)), shq(n.path+":"))
			case a.variadic:
				fmt.Fprintf(&b, "    %s*) echo %s ;;\n", shq(n.path+":"), shq(a.kind))
			default:
				fmt.Fprintf(&b, "    %s) echo %s ;;\n", shq(n.path+":"+fmt.Sprint(i)), shq(a.kind))
			}
		}
	}
	b.WriteString(`  esac
}
_opx() {
  # The words are the line up to the cursor split at blanks only: bash's own
  # COMP_WORDS also splits at "=" and ":", inside values (NAME=op://...).
  local line="${COMP_LINE:0:COMP_POINT}" cw=() cur prev="" path="" w kind i dd=0 npos=0 words flag=""
  read -ra cw <<<"$line"
  [[ -z "$line" || "$line" == *[[:blank:]] ]] && cw+=("")
  local cword=$((${#cw[@]} - 1))
  cur="${cw[cword]}"
  for ((i = 1; i < cword; i++)); do
    w="${cw[i]}"
    if ((dd)); then npos=$((npos + 1)); continue; fi
    if [[ "$w" == "--" ]]; then dd=1; npos=0; continue; fi
    if [[ "$w" == -* ]]; then
      if [[ "$w" != *=* ]] && _opx_flag "$path" "$w" >/dev/null && ((i + 1 < cword)); then i=$((i + 1)); fi
      continue
    fi
    case "${path:+$path }$w" in
`)
	for _, n := range root.all() {
		if n.path != "" {
			fmt.Fprintf(&b, "      %s) path=%s ;;\n", shq(n.path), shq(n.path))
		}
	}
	b.WriteString(`      *) npos=$((npos + 1)) ;;
    esac
  done
  ((cword > 0)) && prev="${cw[cword-1]}"
  if ((!dd)) && [[ "$cur" == --*=* ]]; then
    # --flag=value: readline replaces only what follows the "=".
    flag="${cur%%=*}"; cur="${cur#*=}"
  elif [[ "$prev" == -* && "$prev" != "--" && "$prev" != *=* ]]; then flag="$prev"; fi
  if ((!dd)) && [[ -n "$flag" ]] && kind=$(_opx_flag "$path" "$flag"); then _opx_values "$kind"; return 0; fi
  if ((dd)); then
    _opx_values "$(_opx_arg "$path" "$npos")"
    return 0
  fi
  case "$path" in
`)
	for _, n := range root.all() {
		words := n.subNames()
		fmt.Fprintf(&b, "    %s) words=%s ;;\n", shq(n.path), shq(strings.Join(append(words, n.flagNames()...), " ")))
	}
	b.WriteString(`  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return 0
  fi
  local subs=()
  for w in $words; do [[ "$w" != -* ]] && subs+=("$w"); done
  if ((${#subs[@]})); then
    COMPREPLY=($(compgen -W "${subs[*]}" -- "$cur"))
    return 0
  fi
  _opx_values "$(_opx_arg "$path" "$npos")"
}
complete -F _opx opx
`)
	return b.String()
}

// zshq escapes s for the inside of an _arguments description ([...]) or a
// _describe entry, then quotes it.
func zshDesc(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "[", `\[`, "]", `\]`, ":", `\:`)
	return r.Replace(s)
}

// zshAction is the _arguments action for a kind.
func zshAction(kind string) string {
	switch {
	case kind == kindFiles:
		return "_files"
	case kind == kindAccounts:
		return "_opx_accounts"
	case kind == kindProgram:
		return "_command_names -e"
	case strings.HasPrefix(kind, "enum:"):
		return "(" + strings.TrimPrefix(kind, "enum:") + ")"
	}
	return " "
}

func zshFunc(path string) string {
	if path == "" {
		return "_opx"
	}
	return "_opx_" + strings.NewReplacer(" ", "_", "-", "_").Replace(path)
}

func zshScript(root *node) string {
	var b strings.Builder
	b.WriteString(`#compdef opx
# zsh completion for opx; put it in a directory of $fpath as _opx, or load
# it with: source <(opx completion zsh)
_opx_accounts() {
  local -a accounts
  accounts=(${(f)"$(command opx completion zsh --values=accounts 2>/dev/null)"})
  _describe -t accounts 'account' accounts
}
`)
	for _, n := range root.all() {
		fmt.Fprintf(&b, "%s() {\n", zshFunc(n.path))
		var specs []string
		for _, f := range n.flags {
			desc := zshDesc(f.help)
			rep := ""
			if f.repeat {
				rep = "*"
			}
			names := []string{f.long}
			if f.short != "" {
				names = append(names, f.short)
			}
			for _, name := range names {
				spec := rep + name
				if f.value {
					if strings.HasPrefix(name, "--") {
						spec += "="
					} else {
						spec += "+"
					}
					spec += "[" + desc + "]:" + zshDesc(strings.TrimLeft(name, "-")) + ":" + zshAction(f.kind)
				} else {
					spec += "[" + desc + "]"
				}
				specs = append(specs, spec)
			}
		}
		if len(n.subs) > 0 {
			b.WriteString("  local curcontext=\"$curcontext\" state line\n  local -a subs\n  subs=(\n")
			for _, s := range n.subs {
				fmt.Fprintf(&b, "    %s\n", shq(s.name()+":"+zshDesc(s.help)))
			}
			b.WriteString("  )\n  _arguments -C")
			for _, s := range specs {
				fmt.Fprintf(&b, " \\\n    %s", shq(s))
			}
			b.WriteString(" \\\n    '1:command:->cmd' \\\n    '*::arg:->args'\n")
			b.WriteString("  case $state in\n    cmd) _describe -t commands 'opx command' subs ;;\n    args)\n      case $line[1] in\n")
			for _, s := range n.subs {
				fmt.Fprintf(&b, "        %s) %s ;;\n", shq(s.name()), zshFunc(s.path))
			}
			b.WriteString("      esac ;;\n  esac\n}\n")
			continue
		}
		for _, a := range n.args {
			if a.kind == kindProgram {
				// After --, the words are a command line of its own.
				b.WriteString("  local i=${words[(i)--]}\n  if (( i < CURRENT )); then\n    words=(\"${(@)words[i+1,-1]}\")\n    (( CURRENT -= i ))\n    _normal\n    return\n  fi\n")
			}
		}
		b.WriteString("  _arguments -S")
		for _, s := range specs {
			fmt.Fprintf(&b, " \\\n    %s", shq(s))
		}
		for i, a := range n.args {
			var spec string
			switch {
			case a.kind == kindProgram:
				spec = "*::" + a.name + ":_normal"
			case a.variadic:
				spec = "*:" + a.name + ":" + zshAction(a.kind)
			default:
				spec = fmt.Sprintf("%d:%s:%s", i+1, a.name, zshAction(a.kind))
			}
			fmt.Fprintf(&b, " \\\n    %s", shq(spec))
		}
		b.WriteString("\n}\n")
	}
	b.WriteString(`if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _opx "$@"
else
  compdef _opx opx
fi
`)
	return b.String()
}

// fishArgs is the complete options that make a value complete to kind.
func fishArgs(kind string) string {
	switch {
	case kind == kindFiles:
		return " -r -F"
	case kind == kindAccounts:
		return " -x -a '(command opx completion fish --values=accounts 2>/dev/null)'"
	case kind == kindProgram:
		return " -x -a '(__fish_complete_command)'"
	case strings.HasPrefix(kind, "enum:"):
		return " -x -a " + fishq(strings.TrimPrefix(kind, "enum:"))
	}
	return " -x"
}

func fishScript(root *node) string {
	var b strings.Builder
	b.WriteString(`# fish completion for opx; load with: opx completion fish | source
complete -c opx -f
# __opx_path prints the command the line names so far ("login vault").
function __opx_path
    set -l words (commandline -opc)
    set -l path ''
    set -l i 2
    while test $i -le (count $words)
        set -l w $words[$i]
        set i (math $i + 1)
        test "$w" = '--'; and break
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w; and contains -- "$path $w" $__opx_value_flags
                set i (math $i + 1)
            end
            continue
        end
        set -l next (string trim -- "$path $w")
        contains -- $next $__opx_paths; and set path $next
    end
    echo $path
end
# __opx_at PATH: the line names exactly the command PATH.
function __opx_at
    test (__opx_path) = "$argv[1]"
end
# __opx_nargs: the number of positional arguments after the command.
function __opx_nargs
    set -l words (commandline -opc)
    set -l path ''
    set -l n 0
    set -l dd 0
    set -l i 2
    while test $i -le (count $words)
        set -l w $words[$i]
        set i (math $i + 1)
        if test $dd -eq 1
            set n (math $n + 1)
            continue
        end
        if test "$w" = '--'
            set dd 1
            continue
        end
        if string match -q -- '-*' $w
            if not string match -q -- '*=*' $w; and contains -- "$path $w" $__opx_value_flags
                set i (math $i + 1)
            end
            continue
        end
        set -l next (string trim -- "$path $w")
        if test $n -eq 0; and contains -- $next $__opx_paths
            set path $next
        else
            set n (math $n + 1)
        end
    end
    echo $n
end
# __opx_dd: the line has a -- (what follows is not opx's).
function __opx_dd
    contains -- -- (commandline -opc)
end
`)
	b.WriteString("set -g __opx_paths")
	for _, n := range root.all() {
		if n.path != "" {
			b.WriteString(" " + fishq(n.path))
		}
	}
	b.WriteString("\nset -g __opx_value_flags")
	for _, n := range root.all() {
		for _, f := range n.flags {
			if f.value {
				b.WriteString(" " + fishq(n.path+" "+f.long))
				if f.short != "" {
					b.WriteString(" " + fishq(n.path+" "+f.short))
				}
			}
		}
	}
	b.WriteString("\n")
	for _, n := range root.all() {
		at := "__opx_at \"" + n.path + "\""
		cond := fishq(at)
		for _, s := range n.subs {
			fmt.Fprintf(&b, "complete -c opx -n %s -a %s -d %s\n", cond, fishq(s.name()), fishq(s.help))
		}
		for _, f := range n.flags {
			fmt.Fprintf(&b, "complete -c opx -n %s -l %s", fishq(at+"; and not __opx_dd"), strings.TrimPrefix(f.long, "--"))
			if f.short != "" {
				fmt.Fprintf(&b, " -s %s", strings.TrimPrefix(f.short, "-"))
			}
			if f.value {
				b.WriteString(fishArgs(f.kind))
			}
			fmt.Fprintf(&b, " -d %s\n", fishq(f.help))
		}
		for i, a := range n.args {
			var c string
			switch {
			case a.kind == kindProgram:
				fmt.Fprintf(&b, "complete -c opx -n %s%s\n", fishq(at+"; and test (__opx_nargs) -eq 0"), fishArgs(kindProgram))
				fmt.Fprintf(&b, "complete -c opx -n %s -F\n", fishq(at+"; and test (__opx_nargs) -gt 0"))
				continue
			case a.variadic:
				c = fmt.Sprintf("%s; and test (__opx_nargs) -ge %d", at, i)
			default:
				c = fmt.Sprintf("%s; and test (__opx_nargs) -eq %d", at, i)
			}
			if a.kind == kindNone {
				continue
			}
			fmt.Fprintf(&b, "complete -c opx -n %s%s\n", fishq(c), fishArgs(a.kind))
		}
	}
	return b.String()
}
