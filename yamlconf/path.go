package yamlconf

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Paths name a node by the keys and indexes that lead to it from the
// document root: "listen", "admin.listen", "routes[1].plugins.ai-proxy".
// A key that is empty or contains '.', '[', ']', quotes, backslashes,
// spaces or unprintable characters is written as a Go-quoted string in
// brackets: `upstream.nodes["10.0.0.1:80"]`.

// PathKey returns the path of key below base.
func PathKey(base, key string) string {
	if plainKey(key) {
		if base == "" {
			return key
		}
		return base + "." + key
	}
	return base + "[" + strconv.Quote(key) + "]"
}

// PathIndex returns the path of the i-th list item below base.
func PathIndex(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}

// joinPath appends a relative path (as found in FieldError.Field) to base.
func joinPath(base, rel string) string {
	switch {
	case rel == "":
		return base
	case base == "":
		return rel
	case rel[0] == '[':
		return base + rel
	default:
		return base + "." + rel
	}
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		switch r {
		case '.', '[', ']', '"', '\'', '\\':
			return false
		}
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// pathT is a lazily rendered path: the decoder builds one per visited node
// and renders it only when it reports a problem.
type pathT struct {
	parent *pathT
	seg    string // raw prefix (kind 0) or key (kind 1)
	index  int
	kind   uint8
}

const (
	segRaw uint8 = iota
	segKey
	segIndex
)

func rootPath(prefix string) *pathT {
	if prefix == "" {
		return nil
	}
	return &pathT{seg: prefix, kind: segRaw}
}

func (p *pathT) key(k string) *pathT { return &pathT{parent: p, seg: k, kind: segKey} }
func (p *pathT) idx(i int) *pathT    { return &pathT{parent: p, index: i, kind: segIndex} }

func (p *pathT) String() string {
	var segs []*pathT
	for q := p; q != nil; q = q.parent {
		segs = append(segs, q)
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		q := segs[i]
		switch {
		case q.kind == segIndex:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(q.index))
			b.WriteByte(']')
		case q.kind == segKey && !plainKey(q.seg):
			b.WriteByte('[')
			b.WriteString(strconv.Quote(q.seg))
			b.WriteByte(']')
		default:
			if b.Len() > 0 && q.seg != "" && q.seg[0] != '[' {
				b.WriteByte('.')
			}
			b.WriteString(q.seg)
		}
	}
	return b.String()
}

// segment is one parsed path element: a mapping key or a list index.
type segment struct {
	key     string
	index   int
	isIndex bool
}

// parsePath parses a path. It returns the segments it could parse and
// whether the whole path was valid.
func parsePath(s string) ([]segment, bool) {
	var segs []segment
	first := true
	for s != "" {
		switch {
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			if len(s) > 1 && s[1] == '"' {
				q, err := strconv.QuotedPrefix(s[1:])
				if err != nil || len(s) < 2+len(q) || s[1+len(q)] != ']' {
					return segs, false
				}
				k, err := strconv.Unquote(q)
				if err != nil {
					return segs, false
				}
				segs = append(segs, segment{key: k})
				s = s[2+len(q):]
				break
			}
			if end < 0 {
				return segs, false
			}
			i, err := strconv.Atoi(s[1:end])
			if err != nil || i < 0 {
				return segs, false
			}
			segs = append(segs, segment{index: i, isIndex: true})
			s = s[end+1:]
		case s[0] == '.' && !first:
			s = s[1:]
			fallthrough
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			if end == 0 {
				return segs, false
			}
			segs = append(segs, segment{key: s[:end]})
			s = s[end:]
		}
		first = false
	}
	return segs, true
}

// lookup follows segs from n. It returns the deepest node reached and
// whether all segments were found.
func lookup(n *yaml.Node, segs []segment) (*yaml.Node, bool) {
	if n == nil {
		return nil, false
	}
	n = deref(n)
	for _, sg := range segs {
		var next *yaml.Node
		switch {
		case n.Kind == yaml.SequenceNode && sg.isIndex:
			if sg.index < len(n.Content) {
				next = n.Content[sg.index]
			}
		case n.Kind == yaml.MappingNode:
			k := sg.key
			if sg.isIndex {
				k = strconv.Itoa(sg.index)
			}
			next = mapValue(n, k, 0)
		}
		if next == nil {
			return n, false
		}
		n = deref(next)
	}
	return n, true
}

// mapValue returns the value of key k in mapping m, looking into merged
// mappings ("<<") when k is not an explicit key.
func mapValue(m *yaml.Node, k string, depth int) *yaml.Node {
	if depth > 32 {
		return nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn := deref(m.Content[i])
		if kn.Kind != yaml.ScalarNode {
			continue
		}
		if isMergeKey(kn) {
			merges = append(merges, deref(m.Content[i+1]))
			continue
		}
		if kn.Value == k {
			return m.Content[i+1]
		}
	}
	for _, mv := range merges {
		var list []*yaml.Node
		switch mv.Kind {
		case yaml.MappingNode:
			list = []*yaml.Node{mv}
		case yaml.SequenceNode:
			list = mv.Content
		}
		for _, item := range list {
			if item = deref(item); item.Kind == yaml.MappingNode {
				if v := mapValue(item, k, depth+1); v != nil {
					return v
				}
			}
		}
	}
	return nil
}

// deref resolves an alias node to its target.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Tag == "!!merge" && k.Value == "<<"
}

// At returns the node at path ("" is the root), with aliases resolved, or
// nil if there is no such node.
func (d *Doc) At(path string) *yaml.Node {
	if d == nil {
		return nil
	}
	segs, ok := parsePath(path)
	if !ok {
		return nil
	}
	n, found := lookup(d.Root, segs)
	if !found {
		return nil
	}
	return n
}

// nearest returns the node at path or its nearest existing ancestor.
func (d *Doc) nearest(path string) *yaml.Node {
	if d == nil {
		return nil
	}
	segs, _ := parsePath(path)
	n, _ := lookup(d.Root, segs)
	return n
}

// Problemf returns a Problem for path, positioned at the node for path or,
// when there is none (for example a missing field), at its nearest existing
// ancestor.
func (d *Doc) Problemf(path, format string, args ...any) Problem {
	p := Problem{Path: path, Msg: fmt.Sprintf(format, args...)}
	if d == nil {
		return p
	}
	p.File = d.File
	if n := d.nearest(path); n != nil {
		p.Line, p.Col = n.Line, n.Column
	}
	return p
}
