package yamlconf

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Problem is one configuration error, positioned in a file.
//
// Line and Col are 1-based. They are 0 only for problems that have no
// position at all (for example when a caller decodes a hand-built node).
type Problem struct {
	File string
	Line int
	Col  int
	Path string // dotted field path such as routes[1].upstream.timeout; may be ""
	Msg  string
}

// String formats the problem as "FILE:LINE:COL: path: msg", or
// "FILE:LINE:COL: msg" when Path is empty. A problem without a position
// is formatted as "FILE: path: msg".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if p.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Col))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is a list of problems. It implements error; its message is one
// problem per line.
//
// Beware the typed-nil trap: a nil Problems stored in an error variable is
// not a nil error. Use [Problems.Err] to get an error that is nil when the
// list is empty.
type Problems []Problem

// Error joins all problems with "\n".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Err returns ps as an error, or nil when ps is empty.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Add appends problems.
func (ps *Problems) Add(p ...Problem) {
	*ps = append(*ps, p...)
}

// Addf appends a problem built from a position, a path and a message.
func (ps *Problems) Addf(file string, line, col int, path, format string, args ...any) {
	*ps = append(*ps, Problem{File: file, Line: line, Col: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Sort sorts ps in place by file, line, column, path and message.
// All functions of this package return sorted problems; call Sort after
// concatenating several lists.
func (ps Problems) Sort() {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
}

// FieldError is a validation error reported by a [Validator]. Field is
// relative to the validated struct, uses the same syntax as paths
// ("timeout", "instances[1].name", `nodes["10.0.0.1:80"]`, see [PathKey])
// and may be "" for the struct itself.
type FieldError struct {
	Field string
	Msg   string
}

// JoinFieldErrors turns the field errors of what prefix names (a plugin,
// "tracing") into one error, a line "prefix: Field: Msg" per error, or
// nil when there are none: what a constructor returns for a config that
// does not validate. An error without a Field is "prefix: Msg".
func JoinFieldErrors(prefix string, errs []FieldError) error {
	joined := make([]error, len(errs))
	for i, e := range errs {
		if e.Field == "" {
			joined[i] = fmt.Errorf("%s: %s", prefix, e.Msg)
		} else {
			joined[i] = fmt.Errorf("%s: %s: %s", prefix, e.Field, e.Msg)
		}
	}
	return errors.Join(joined...)
}

// Validator is implemented by config structs (usually on the pointer
// receiver) that check themselves after decoding. The decoder calls
// Validate on every struct it decoded from a mapping, and reports each
// FieldError as a Problem positioned at the field's node (or its nearest
// existing ancestor). Errors on a path that already has a decoding problem,
// or lies below one, are dropped as consequential.
type Validator interface {
	Validate() []FieldError
}

// Unmarshaler is implemented by types (usually on the pointer receiver)
// that decode themselves from a node. The node has aliases resolved and
// environment variables expanded. A returned error is reported as a
// Problem at the node with the error's text as message.
type Unmarshaler interface {
	UnmarshalYAMLConf(n *yaml.Node) error
}
