package client

import (
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
)

// CompletionCmd is `opx completion bash|zsh|fish`: a completion script made
// from the command grammar itself, so it never falls behind it.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh,fish" help:"Shell: ${enum}."`
}

// node is one command of the grammar, for the scripts.
type node struct {
	path     string // "login vault"
	help     string
	subs     []*node
	flags    []string // "--name", "-s"
	flagHelp map[string]string
}

func walk(n *kong.Node, path string, inherited []*kong.Flag) *node {
	out := &node{path: path, help: n.Help, flagHelp: map[string]string{}}
	flags := append(append([]*kong.Flag(nil), inherited...), n.Flags...)
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		name := "--" + f.Name
		out.flags = append(out.flags, name)
		out.flagHelp[name] = f.Help
		if f.Short != 0 {
			out.flags = append(out.flags, "-"+string(f.Short))
		}
		if f.Tag != nil && f.Tag.Negatable != "" {
			out.flags = append(out.flags, "--no-"+f.Name)
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

func (n *node) subNames() []string {
	var names []string
	for _, s := range n.subs {
		names = append(names, s.path[strings.LastIndexByte(" "+s.path, ' '):])
	}
	sort.Strings(names)
	return names
}

// Run prints the script.
func (c *CompletionCmd) Run(ctx *kong.Context, env *Env) error {
	root := walk(ctx.Model.Node, "", nil)
	var s string
	switch c.Shell {
	case "bash":
		s = bashScript(root)
	case "zsh":
		s = "#compdef opx\nautoload -U +X bashcompinit && bashcompinit\n" + bashScript(root)
	case "fish":
		s = fishScript(root)
	}
	_, err := fmt.Fprint(env.Stdout, s)
	return err
}

func bashScript(root *node) string {
	var b strings.Builder
	b.WriteString(`# bash completion for opx; load with: source <(opx completion bash)
_opx() {
  local cur path="" w i
  cur="${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    [[ "$w" == "--" ]] && return 0
    [[ "$w" == -* ]] && continue
    case "${path:+$path }$w" in
`)
	for _, n := range root.all() {
		if n.path != "" {
			fmt.Fprintf(&b, "      %q) path=%q ;;\n", n.path, n.path)
		}
	}
	b.WriteString(`    esac
  done
  local words
  case "$path" in
`)
	for _, n := range root.all() {
		words := append(n.subNames(), n.flags...)
		fmt.Fprintf(&b, "    %q) words=%q ;;\n", n.path, strings.Join(words, " "))
	}
	b.WriteString(`  esac
  if [[ "$cur" != -* ]]; then
    local subs=()
    for w in $words; do [[ "$w" != -* ]] && subs+=("$w"); done
    if ((${#subs[@]})); then
      COMPREPLY=($(compgen -W "${subs[*]}" -- "$cur"))
      return 0
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _opx opx
`)
	return b.String()
}

func fishScript(root *node) string {
	var b strings.Builder
	b.WriteString("# fish completion for opx; load with: opx completion fish | source\ncomplete -c opx -f\n")
	for _, n := range root.all() {
		cond := "__fish_use_subcommand"
		if n.path != "" {
			parts := strings.Fields(n.path)
			conds := make([]string, len(parts))
			for i, p := range parts {
				conds[i] = "__fish_seen_subcommand_from " + p
			}
			cond = strings.Join(conds, "; and ")
			if len(n.subs) > 0 {
				var subs []string
				for _, s := range n.subNames() {
					subs = append(subs, s)
				}
				cond += "; and not __fish_seen_subcommand_from " + strings.Join(subs, " ")
			}
		}
		for _, s := range n.subs {
			name := s.path[strings.LastIndexByte(" "+s.path, ' '):]
			fmt.Fprintf(&b, "complete -c opx -n %q -a %s -d %q\n", cond, name, s.help)
		}
		for _, f := range n.flags {
			if strings.HasPrefix(f, "--") {
				fmt.Fprintf(&b, "complete -c opx -n %q -l %s -d %q\n", cond, strings.TrimPrefix(f, "--"), n.flagHelp[f])
			}
		}
	}
	return b.String()
}
