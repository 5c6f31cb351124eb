package template

import (
	"bytes"
	"strconv"
	"strings"
)

// Templates for opx inject follow 1Password's documented template syntax
// (developer docs, "Template syntax"), so that a template written for
// op inject renders the same:
//
//   - An unenclosed reference begins with op:// not preceded by a letter,
//     digit, '-', '+', '\' or '.', and ends at the end of the template or at
//     the first character that is not a letter, digit, '-', '?', '_' or '.'
//     ('/' separates its parts; $VAR and ${VAR} variables are part of it).
//   - An enclosed reference is "{{", a valid unenclosed reference possibly
//     padded with spaces, and "}}". vault:// and bao:// references are
//     recognised in this form only, with opx's own grammar.
//   - "{{", a double-quoted string (\" for a quote, \\ for a backslash)
//     possibly padded with spaces, and "}}" is replaced by the string, which
//     is how a template writes a literal "{{ ... }}".
//
// Everything else is copied byte for byte, including a "{{" that opens
// none of these.

// Part is a piece of a parsed template: literal bytes, or a reference.
type Part struct {
	Lit  []byte
	Ref  string // as written, variables not yet expanded; "" for a literal
	Line int    // 1-based line of the reference's start
}

// Parse splits t into literals and references. With opOnly it reads t as
// op inject does: {{ vault://... }} and {{ bao://... }} stay literal text.
func Parse(t []byte, opOnly bool) []Part {
	var parts []Part
	lit := 0 // start of the pending literal
	line := 1
	flush := func(end int) {
		if end > lit {
			parts = append(parts, Part{Lit: t[lit:end]})
		}
	}
	for i := 0; i < len(t); {
		switch {
		case t[i] == '{' && bytes.HasPrefix(t[i:], []byte("{{")):
			if ref, n := enclosedRef(t[i:], opOnly); n > 0 {
				flush(i)
				parts = append(parts, Part{Ref: ref, Line: line})
				i += n
				lit = i
				continue
			}
			if s, n := quotedEscape(t[i:]); n > 0 {
				flush(i)
				parts = append(parts, Part{Lit: s})
				line += bytes.Count(t[i:i+n], []byte("\n"))
				i += n
				lit = i
				continue
			}
		case t[i] == 'o' && bytes.HasPrefix(t[i:], []byte("op://")) && (i == 0 || !blocksRef(t[i-1])):
			if n := unenclosedLen(t[i:]); n > 0 {
				flush(i)
				parts = append(parts, Part{Ref: string(t[i : i+n]), Line: line})
				i += n
				lit = i
				continue
			}
		case t[i] == '\n':
			line++
		}
		i++
	}
	flush(len(t))
	return parts
}

// blocksRef reports whether c, just before "op://", makes it no reference.
func blocksRef(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '-' || c == '+' || c == '\\' || c == '.'
}

// refChar reports whether c may continue an unenclosed reference.
func refChar(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '-' || c == '?' || c == '_' || c == '.' || c == '/'
}

// unenclosedLen is the length of the unenclosed reference at the start of
// s (which starts with "op://"), or 0 when nothing follows "op://".
func unenclosedLen(s []byte) int {
	i := len("op://")
	for i < len(s) {
		if refChar(s[i]) {
			i++
			continue
		}
		if s[i] == '$' {
			if n := variableLen(s[i:]); n > 0 {
				i += n
				continue
			}
		}
		break
	}
	if i == len("op://") {
		return 0
	}
	return i
}

// variableLen is the length of the variable at the start of s, or 0 when
// none starts there (and the reference ends before the '$'): $NAME, or
// ${ NAME } or ${ NAME :-DEFAULT } on one line, the default at most
// maxDefault bytes and without '}'.
func variableLen(s []byte) int {
	name := func(j int) int { // the end of a name starting at j, or j
		if j < len(s) && (isLetter(s[j]) || s[j] == '_') {
			j++
			for j < len(s) && (isLetter(s[j]) || isDigit(s[j]) || s[j] == '_') {
				j++
			}
		}
		return j
	}
	if len(s) < 2 || s[1] != '{' {
		if j := name(1); j > 1 {
			return j
		}
		return 0
	}
	j := 2
	for j < len(s) && s[j] == ' ' {
		j++
	}
	end := name(j)
	if end == j {
		return 0
	}
	j = end
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if j+1 < len(s) && s[j] == ':' && s[j+1] == '-' {
		j += 2
		for k := 0; j < len(s) && s[j] != '}' && s[j] != '\n' && k < maxDefault; j, k = j+1, k+1 {
		}
	}
	if j < len(s) && s[j] == '}' {
		return j + 1
	}
	return 0
}

// maxDefault bounds a variable's default value in a template.
const maxDefault = 256

// enclosedRef reads "{{ REF }}" at the start of s and returns REF and the
// length read, or n == 0; with opOnly, only an op:// REF.
func enclosedRef(s []byte, opOnly bool) (ref string, n int) {
	i := 2
	for i < len(s) && s[i] == ' ' {
		i++
	}
	rest := s[i:]
	var end int
	switch {
	case bytes.HasPrefix(rest, []byte("op://")):
		end = unenclosedLen(rest)
	case !opOnly && (bytes.HasPrefix(rest, []byte("vault://")) || bytes.HasPrefix(rest, []byte("bao://"))):
		// opx's own grammar: everything up to the padding and "}}".
		for end < len(rest) && rest[end] > ' ' && rest[end] != 0x7f && !bytes.HasPrefix(rest[end:], []byte("}}")) {
			end++
		}
	}
	if end == 0 {
		return "", 0
	}
	j := i + end
	for j < len(s) && s[j] == ' ' {
		j++
	}
	if !bytes.HasPrefix(s[j:], []byte("}}")) {
		return "", 0
	}
	return string(s[i : i+end]), j + 2
}

// quotedEscape reads `{{ "..." }}` at the start of s and returns the
// string, unescaped, and the length read, or n == 0.
func quotedEscape(s []byte) (out []byte, n int) {
	i := 2
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) || s[i] != '"' {
		return nil, 0
	}
	i++
	var b []byte
	for ; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b = append(b, s[i+1])
				i++
				continue
			}
			b = append(b, '\\')
		case '"':
			j := i + 1
			for j < len(s) && s[j] == ' ' {
				j++
			}
			if !bytes.HasPrefix(s[j:], []byte("}}")) {
				return nil, 0
			}
			if b == nil {
				b = []byte{}
			}
			return b, j + 2
		default:
			b = append(b, s[i])
		}
	}
	return nil, 0
}

// Refs returns the distinct references of parts, and the lines
// each is on.
func Refs(parts []Part) (refs []string, lines map[string][]int) {
	lines = map[string][]int{}
	for _, p := range parts {
		if p.Ref == "" {
			continue
		}
		if _, ok := lines[p.Ref]; !ok {
			refs = append(refs, p.Ref)
		}
		lines[p.Ref] = append(lines[p.Ref], p.Line)
	}
	return refs, lines
}

// LineList is "line 3" or "lines 3, 7".
func LineList(lines []int) string {
	var b strings.Builder
	if len(lines) == 1 {
		b.WriteString("line ")
	} else {
		b.WriteString("lines ")
	}
	for i, l := range lines {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(l))
	}
	return b.String()
}
