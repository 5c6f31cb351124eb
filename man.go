package main

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
)

// manFlag is the hidden --man flag: it prints opx(1), in roff, made from
// the same grammar as --help, so the page cannot fall behind the commands.
// make man writes it to man/opx.1.
type manFlag bool

// BeforeApply prints the page and exits.
func (manFlag) BeforeApply(app *kong.Kong) error {
	fmt.Fprint(app.Stdout, manPage(app.Model))
	app.Exit(0)
	return nil
}

// manSections are the page's sections beyond the commands and flags: each
// entry is a term and its text (an empty term: a paragraph).
var manSections = []struct {
	name    string
	entries [][2]string
}{
	{"EXIT STATUS", [][2]string{
		{"0", "Done."},
		{"1", "A read failed (each failed ref is named on stderr), or another error."},
		{"2", "Usage: an unknown command or flag, a missing argument, a bare opx."},
		{"3", "No daemon is running (opx status)."},
		{"75", "Another daemon already serves this socket (opx daemon; opx stop stops it)."},
		{"126, 127", "opx run: the command cannot be run, or is not found."},
		{"128+N", "opx run: the command was ended by signal N."},
		{"other", "opx run: the command's own exit status."},
	}},
	{"ENVIRONMENT", [][2]string{
		{"OP_AUTHD_*, OPX_OP_PATH", "The daemon's flags (see opx daemon above). A client compares the settings they give with the running daemon's and warns once when they differ; opx restart applies them."},
		{"OPX_ACCOUNT, OP_ACCOUNT", "The 1Password account to read with."},
		{"OPX_STRICT=1", "A daemon whose settings differ is an error, not a warning."},
		{"OPX_QUIET=1", "No progress line while a read waits."},
		{"OPX_AUTOSTART=0", "Do not start a daemon."},
		{"OPX_SOCKET_PATH", "The daemon's socket."},
		{"VAULT_ADDR, VAULT_TOKEN, BAO_ADDR, BAO_TOKEN", "The Vault and OpenBao servers and tokens, when config.json does not name them."},
	}},
	{"FILES", [][2]string{
		{"~/.config/op-authd/config.json", "Settings and the default account (under XDG_CONFIG_HOME when set)."},
		{"~/.config/op-authd/policy.json", "Which programs may read which refs."},
		{"~/.local/share/op-authd/", "The token, the TLS pair, the audit logs and the daemon's log (under XDG_DATA_HOME when set)."},
		{"$XDG_RUNTIME_DIR/op-authd/socket.sock", "The daemon's socket (in the data directory when XDG_RUNTIME_DIR is not set)."},
	}},
	{"SEE ALSO", [][2]string{
		{"", "op(1), vault(1), bao(1). opx's README and docs/ hold the protocol, the architecture and the threat model."},
	}},
}

// manPage renders the page for app. Hidden commands and flags are left
// out, as --help leaves them out.
func manPage(app *kong.Application) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH OPX 1 \"\" \"opx %s\" \"User Commands\"\n", roffEscape(version))
	b.WriteString(".SH NAME\nopx \\- a local secrets broker: fast, cached reads from 1Password, Vault and OpenBao\n")
	b.WriteString(".SH SYNOPSIS\n.B opx\n[\\fIGLOBAL FLAGS\\fR] \\fICOMMAND\\fR [\\fIFLAGS\\fR] [\\fIARGUMENTS\\fR]\n")
	intro, examples, _ := strings.Cut(description, "\n\nExamples:\n")
	b.WriteString(".SH DESCRIPTION\n")
	b.WriteString(roffText(strings.ReplaceAll(intro, "\n", " ")) + "\n")
	b.WriteString(".SH GLOBAL FLAGS\n")
	manFlags(&b, app.Node.Flags)
	b.WriteString(".SH COMMANDS\n")
	var cmds func(n *kong.Node)
	cmds = func(n *kong.Node) {
		for _, c := range n.Children {
			if c.Hidden || c.Type != kong.CommandNode {
				continue
			}
			if len(c.Children) == 0 || len(c.Flags) > 0 || len(c.Positional) > 0 {
				fmt.Fprintf(&b, ".SS \"%s\"\n", roffEscape("opx "+c.Summary()))
				b.WriteString(roffText(c.Help) + "\n")
				if c.Detail != "" {
					b.WriteString(".PP\n" + roffText(c.Detail) + "\n")
				}
				for _, p := range c.Positional {
					fmt.Fprintf(&b, ".TP\n\\fI%s\\fR\n%s\n", roffEscape(p.Name), roffText(p.Help))
				}
				manFlags(&b, c.Flags)
			}
			cmds(c)
		}
	}
	cmds(app.Node)
	b.WriteString(".SH EXAMPLES\n.nf\n")
	for _, line := range strings.Split(examples, "\n") {
		b.WriteString(roffLine(strings.TrimSpace(line)) + "\n")
	}
	b.WriteString(".fi\n")
	for _, s := range manSections {
		fmt.Fprintf(&b, ".SH %s\n", s.name)
		for _, e := range s.entries {
			if e[0] == "" {
				b.WriteString(".PP\n" + roffText(e[1]) + "\n")
				continue
			}
			fmt.Fprintf(&b, ".TP\n\\fB%s\\fR\n%s\n", roffEscape(e[0]), roffText(e[1]))
		}
	}
	return b.String()
}

// manFlags lists flags: name, value, help, default and environment.
func manFlags(b *strings.Builder, flags []*kong.Flag) {
	for _, f := range flags {
		if f.Hidden {
			continue
		}
		b.WriteString(".TP\n")
		if f.Short != 0 {
			fmt.Fprintf(b, "\\fB\\-%c\\fR, ", f.Short)
		}
		fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", roffEscape(f.Name))
		if !f.IsBool() && !f.IsCounter() {
			ph := f.PlaceHolder
			switch {
			case ph != "":
			case f.Enum != "":
				ph = strings.ReplaceAll(f.Enum, ",", "|")
			default:
				ph = strings.ToUpper(f.Name)
			}
			fmt.Fprintf(b, "=\\fI%s\\fR", roffEscape(ph))
		}
		b.WriteString("\n" + roffText(f.Help))
		var notes []string
		if f.HasDefault && f.Default != "" && !f.IsBool() && !strings.Contains(f.Help, "default") {
			notes = append(notes, "Default: "+f.Default+".")
		}
		if len(f.Envs) > 0 {
			notes = append(notes, "Environment: "+strings.Join(f.Envs, ", ")+".")
		}
		if len(notes) > 0 {
			b.WriteString(" " + roffText(strings.Join(notes, " ")))
		}
		b.WriteString("\n")
	}
}

// roffEscape makes s safe inside a roff line: backslashes and hyphens
// (which roff would turn into hyphens, not the minus of a flag) escaped.
func roffEscape(s string) string {
	return strings.NewReplacer(`\`, `\e`, "-", `\-`, `"`, `\(dq`).Replace(s)
}

// roffLine is one escaped line that roff cannot read as a request.
func roffLine(s string) string {
	s = roffEscape(s)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffText is text for a paragraph, one escaped line per line of s.
func roffText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = roffLine(l)
	}
	return strings.Join(lines, "\n")
}
