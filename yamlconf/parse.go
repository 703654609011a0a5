package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Doc is a parsed YAML file.
//
// A Doc may be decoded any number of times, also concurrently: decoding
// does not modify the nodes. (Parse modifies them once, to expand
// environment variables.) A Doc may also be built by hand from a file name
// and a node.
type Doc struct {
	// File is the file name used in problems.
	File string
	// Root is the top-level node of the document (never a DocumentNode).
	// For an empty document it is an empty mapping at line 1, column 1.
	Root *yaml.Node

	expanded  atomic.Int64        // nodes visited through aliases, over all decodes
	envFailed map[*yaml.Node]bool // scalars whose ${VAR} expansion failed
}

// MaxAliasExpansion caps how many nodes may be visited through aliases
// while decoding one Doc (summed over all Decode and DecodeNode calls), to
// defuse "billion laughs" documents.
const MaxAliasExpansion = 100_000

// Parse parses data, the contents of file, into a Doc.
//
// ${VAR} and ${VAR:-default} in scalar values (not in keys) are replaced by
// env(VAR); a default applies when VAR is unset or empty. "$${" stands for a
// literal "${". The replacement text is not expanded again. An unset
// variable without default, an unterminated "${" or a malformed name is a
// Problem at the scalar. Unquoted scalars are re-typed after expansion, so
// "port: ${PORT}" with PORT=8080 is an integer, while quoted scalars stay
// strings. env == nil means os.LookupEnv.
//
// A syntax error is reported at the line yaml.v3 names (column 1, since
// yaml.v3 does not report columns) and Parse returns a nil Doc. A file with
// more than one YAML document is a problem too. An empty document (or one
// that is just null) is an empty mapping.
//
// Parse returns a usable Doc whenever the YAML itself could be parsed, even
// if there are environment problems; the problems are sorted.
func Parse(file string, data []byte, env func(string) (string, bool)) (*Doc, Problems) {
	if env == nil {
		env = os.LookupEnv
	}
	var probs Problems
	root, err := parseYAML(data)
	if err != nil {
		probs = append(probs, syntaxProblem(file, data, err))
		return nil, probs
	}
	var second *yaml.Node
	if len(root) > 1 {
		second = root[1]
	}
	doc := &Doc{File: file}
	if len(root) > 0 && len(root[0].Content) > 0 {
		doc.Root = root[0].Content[0]
	}
	if doc.Root == nil || isNull(doc.Root) {
		line, col := 1, 1
		if doc.Root != nil && doc.Root.Line > 0 {
			line, col = doc.Root.Line, doc.Root.Column
		}
		doc.Root = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line, Column: col}
	}
	if second != nil {
		probs.Addf(file, max(second.Line, 1), max(second.Column, 1), "", "only one YAML document is allowed per file")
	}
	x := expander{file: file, env: env, probs: &probs, failed: map[*yaml.Node]bool{}}
	x.walk(doc.Root, nil, false)
	if len(x.failed) > 0 {
		doc.envFailed = x.failed
	}
	probs.Sort()
	return doc, probs
}

// Load parses data and decodes it into out (a non-nil pointer), returning
// the Doc (nil on a syntax error) and all problems of both steps, sorted.
func Load(file string, data []byte, env func(string) (string, bool), out any) (*Doc, Problems) {
	doc, probs := Parse(file, data, env)
	if doc == nil {
		return nil, probs
	}
	probs = append(probs, doc.Decode(out)...)
	probs.Sort()
	return doc, probs
}

// parseYAML returns the first document and, if present, a second non-empty
// one.
func parseYAML(data []byte) (docs []*yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			docs, err = nil, fmt.Errorf("yaml: internal parser error: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for len(docs) < 2 {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return nil, err
		}
		if len(docs) == 1 && (len(n.Content) == 0 || isNull(n.Content[0]) && n.Content[0].Value == "") {
			continue // a trailing "---" with nothing after it
		}
		docs = append(docs, &n)
	}
	return docs, nil
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserErrors are the messages of yaml.v3's parser (as opposed to its
// scanner) errors.
var parserErrors = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// syntaxProblem converts a yaml.v3 parse error into a Problem. yaml.v3
// names the line for most errors; for the others the offending spot is
// searched in the input.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg := err.Error()
	p := Problem{File: file, Line: 1, Col: 1}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			p.Line = n
			if parserErrors[m[2]] {
				// yaml.v3 reports parser (not scanner) errors with a
				// 0-based line number.
				p.Line++
			}
		}
		p.Msg = "syntax error: " + m[2]
		return p
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	p.Msg = "syntax error: " + msg
	off := -1
	switch {
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		off = findAlias(data, name)
	case strings.HasPrefix(msg, "invalid leading UTF-8 octet"), strings.HasPrefix(msg, "invalid trailing UTF-8 octet"),
		strings.HasPrefix(msg, "incomplete UTF-8 octet sequence"), strings.HasPrefix(msg, "invalid Unicode character"):
		off = firstBadUTF8(data)
	case strings.HasPrefix(msg, "control characters are not allowed"):
		off = firstControl(data)
	}
	if off >= 0 {
		p.Line, p.Col = position(data, off)
	}
	return p
}

func findAlias(data []byte, name string) int {
	pat := []byte("*" + name)
	for i := 0; ; {
		j := bytes.Index(data[i:], pat)
		if j < 0 {
			return -1
		}
		end := i + j + len(pat)
		if end == len(data) || strings.IndexByte(" \t\r\n,]}", data[end]) >= 0 {
			return i + j
		}
		i = end
	}
}

func firstBadUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

func firstControl(data []byte) int {
	for i, r := range string(data) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f || r >= 0x80 && r < 0xa0 && r != 0x85 {
			return i
		}
	}
	return -1
}

// position converts a byte offset into a 1-based line and column (in runes).
func position(data []byte, off int) (line, col int) {
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

// expander expands ${VAR} references in scalar values.
type expander struct {
	file   string
	env    func(string) (string, bool)
	probs  *Problems
	failed map[*yaml.Node]bool
}

// walk visits every node reachable through Content once (alias targets are
// visited at their anchor, never through the alias).
func (x *expander) walk(n *yaml.Node, path *pathT, isKey bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !isKey {
			x.scalar(n, path)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			x.walk(c, path.idx(i), false)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := deref(n.Content[i])
			kp := path
			if k.Kind == yaml.ScalarNode {
				kp = path.key(k.Value)
			}
			x.walk(n.Content[i], kp, true)
			x.walk(n.Content[i+1], kp, false)
		}
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path, false)
		}
	}
}

func (x *expander) scalar(n *yaml.Node, path *pathT) {
	if !strings.Contains(n.Value, "$") {
		return
	}
	v, errs := expand(n.Value, x.env)
	for _, e := range errs {
		x.probs.Addf(x.file, n.Line, n.Column, path.String(), "%s", e)
	}
	if len(errs) > 0 {
		// Decoders skip this node: its problem is already reported.
		x.failed[n] = true
		return
	}
	if v == n.Value {
		return
	}
	n.Value = v
	if n.Style == 0 && (n.Tag == "" || n.Tag == "!!str") {
		// A plain scalar: type it again, as if the value had been written.
		n.Tag = ""
		n.Tag = n.ShortTag()
	}
}

// expand replaces ${VAR}, ${VAR:-default} and $${ in s.
func expand(s string, env func(string) (string, bool)) (string, []string) {
	var b strings.Builder
	var errs []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		switch {
		case strings.HasPrefix(s, "$${"):
			b.WriteString("${")
			s = s[3:]
		case strings.HasPrefix(s, "${"):
			end := strings.IndexByte(s, '}')
			if end < 0 {
				errs = append(errs, fmt.Sprintf("unterminated %q (write $${ for a literal ${)", abbrev(s, 20)))
				b.WriteString(s)
				return b.String(), errs
			}
			ref := s[2:end]
			name, def, hasDef := strings.Cut(ref, ":-")
			if !validEnvName(name) {
				errs = append(errs, fmt.Sprintf("invalid environment variable reference %q", abbrev(s[:end+1], 40)))
				b.WriteString(s[:end+1])
			} else if val, ok := env(name); hasDef && (!ok || val == "") {
				b.WriteString(def)
			} else if !ok {
				errs = append(errs, fmt.Sprintf("environment variable %s is not set", name))
			} else {
				b.WriteString(val)
			}
			s = s[end+1:]
		default:
			b.WriteByte('$')
			s = s[1:]
		}
	}
	return b.String(), errs
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// abbrev shortens s to at most n runes.
func abbrev(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}
