package yamlconf

import (
	"encoding"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	nodePtrType  = reflect.TypeFor[*yaml.Node]()
	nodeType     = reflect.TypeFor[yaml.Node]()
	durationType = reflect.TypeFor[time.Duration]()
	anyType      = reflect.TypeFor[any]()
)

// Decode decodes the whole document into out, which must be a non-nil
// pointer (usually to a struct). It is DecodeNode(d.Root, "", out).
func (d *Doc) Decode(out any) Problems {
	if d == nil {
		return (*Doc)(nil).DecodeNode(nil, "", out)
	}
	return d.DecodeNode(d.Root, "", out)
}

// DecodeNode decodes n, a node of d (typically one that a *yaml.Node field
// received, such as a plugin's config), into out, a non-nil pointer. Paths
// in problems start with path, which should be n's path in the document.
//
// When n is nil or null and out points to a struct, it decodes as an empty
// mapping (so required fields are reported and Validate runs), positioned
// at n or, for a nil n, at the node for path or its nearest ancestor.
//
// Rules, in order, for each Go value:
//   - an alias is replaced by its anchored node;
//   - *yaml.Node and yaml.Node receive the node itself, unchanged (null too);
//   - null counts as absent and leaves the value unchanged (a struct field
//     keeps its zero or preset value, a map entry or list item is the zero
//     value), except that a null map entry or list item of struct type
//     decodes as an empty mapping, so its required fields are reported;
//   - pointers are allocated when needed and decoded through;
//   - an [Unmarshaler] decodes itself;
//   - time.Duration takes a Go duration string ("30s", "1m30s"); a bare
//     number is rejected;
//   - an encoding.TextUnmarshaler takes a scalar's text;
//   - a struct takes a mapping whose keys name fields by their yaml tag (or
//     lower-cased field name); unknown keys are problems unless the struct
//     has an ",inline" map; `conf:"required"` fields must be present and not
//     null; ",inline" embeds a struct's fields; after decoding, [Validator]
//     is called;
//   - maps take mappings, slices take lists, arrays take lists of exactly
//     their length;
//   - strings take any non-null scalar's text; bools take true or false;
//     integers take YAML integers (decimal, 0x, 0o, 0b) within range;
//     floats take YAML numbers;
//   - an empty interface takes the natural Go value: map[string]any, []any,
//     string, int (uint64 or float64 when out of int range), float64, bool
//     or nil.
//
// Duplicate keys are problems; mappings merge "<<" keys as YAML does. A
// scalar whose ${VAR} expansion failed in Parse is skipped (its problem is
// already reported). Fields absent from the YAML keep the values they had,
// so out may be preset with defaults. Decoding goes on after a problem and
// reports all of them, sorted.
func (d *Doc) DecodeNode(n *yaml.Node, path string, out any) Problems {
	if d == nil {
		d = &Doc{}
	}
	rv := reflect.ValueOf(out)
	if !rv.IsValid() || rv.Kind() != reflect.Pointer || rv.IsNil() {
		return Problems{d.Problemf(path, "yamlconf: cannot decode into %T: need a non-nil pointer", out)}
	}
	if n != nil && n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			n = n.Content[0]
		} else {
			n = nil
		}
	}
	if n == nil || isNull(deref(n)) {
		if !wantsMapping(rv.Type()) {
			if n == nil {
				return nil
			}
		} else {
			line, col := 1, 1
			if n != nil {
				n = deref(n)
				line, col = n.Line, n.Column
			} else if a := d.nearest(path); a != nil {
				line, col = a.Line, a.Column
			}
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line, Column: col}
		}
	}
	dec := &decoder{doc: d}
	dec.decode(n, rootPath(path), rv.Elem())
	dec.probs.Sort()
	return dec.probs
}

// wantsMapping reports whether t (a pointer type) leads to a struct that
// decodes from a mapping.
func wantsMapping(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		if t == nodePtrType || t.Implements(reflect.TypeFor[Unmarshaler]()) || t.Implements(reflect.TypeFor[encoding.TextUnmarshaler]()) {
			return false
		}
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != nodeType
}

type decoder struct {
	doc        *Doc
	probs      Problems
	active     []*yaml.Node // anchored nodes being decoded
	aliasDepth int          // > 0 while decoding through an alias
	aborted    bool         // alias expansion budget exhausted
}

func (d *decoder) addf(n *yaml.Node, p *pathT, format string, args ...any) {
	d.probs.Addf(d.doc.File, n.Line, n.Column, p.String(), format, args...)
}

// enter resolves an alias and marks an anchored node as being decoded, so
// that an alias to a node from inside that node is reported instead of
// expanded forever. The returned function must be called when done.
func (d *decoder) enter(n *yaml.Node, p *pathT) (*yaml.Node, func(), bool) {
	viaAlias := false
	if n.Kind == yaml.AliasNode {
		t := n.Alias
		if t == nil {
			d.addf(n, p, "alias *%s has no anchor", n.Value)
			return nil, nil, false
		}
		if slices.Contains(d.active, t) {
			d.addf(n, p, "alias *%s refers to a node that contains it", n.Value)
			return nil, nil, false
		}
		n, viaAlias = t, true
		d.aliasDepth++
	}
	anchored := n.Anchor != ""
	if anchored {
		d.active = append(d.active, n)
	}
	return n, func() {
		if anchored {
			d.active = d.active[:len(d.active)-1]
		}
		if viaAlias {
			d.aliasDepth--
		}
	}, true
}

// count charges one node against the alias expansion budget when it is
// reached through an alias.
func (d *decoder) count(n *yaml.Node, p *pathT) bool {
	if d.aborted {
		return false
	}
	if d.aliasDepth == 0 {
		return true
	}
	if d.doc.expanded.Add(1) > MaxAliasExpansion {
		d.addf(n, p, "aliases expand to too many nodes (limit %d)", MaxAliasExpansion)
		d.aborted = true
		return false
	}
	return true
}

func (d *decoder) decode(n *yaml.Node, p *pathT, v reflect.Value) {
	if d.aborted {
		return
	}
	n, leave, ok := d.enter(n, p)
	if !ok {
		return
	}
	defer leave()
	if !d.count(n, p) {
		return
	}
	for {
		t := v.Type()
		if t == nodePtrType {
			v.Set(reflect.ValueOf(n))
			return
		}
		if t == nodeType {
			v.Set(reflect.ValueOf(n).Elem())
			return
		}
		if isNull(n) || d.doc.envFailed[n] {
			return // for envFailed: the bad ${VAR} is already reported
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		v = v.Elem()
	}
	if v.CanAddr() && v.Addr().CanInterface() {
		if u, ok := v.Addr().Interface().(Unmarshaler); ok {
			if err := u.UnmarshalYAMLConf(n); err != nil {
				d.addf(n, p, "%s", err.Error())
			}
			return
		}
	}
	if v.Type() == durationType {
		d.duration(n, p, v)
		return
	}
	if v.CanAddr() && v.Addr().CanInterface() {
		if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
			if n.Kind != yaml.ScalarNode {
				d.addf(n, p, "must be a string, got %s", describe(n))
			} else if err := u.UnmarshalText([]byte(n.Value)); err != nil {
				d.addf(n, p, "%s", err.Error())
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.NumMethod() != 0 {
			d.addf(n, p, "cannot decode into Go type %s", v.Type())
			return
		}
		d.natural(n, p, v)
	case reflect.Struct:
		d.structValue(n, p, v)
	case reflect.Map:
		d.mapValue(n, p, v)
	case reflect.Slice:
		d.sliceValue(n, p, v)
	case reflect.Array:
		d.arrayValue(n, p, v)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.addf(n, p, "must be a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!bool" {
			if b, err := strconv.ParseBool(n.Value); err == nil {
				v.SetBool(b)
				return
			}
		}
		d.addf(n, p, "must be true or false, got %s", describe(n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		z, ok := d.integer(n, p)
		if !ok {
			return
		}
		bits := v.Type().Bits()
		lo, hi := int64(-1)<<(bits-1), int64(1)<<(bits-1)-1
		if !z.IsInt64() || z.Int64() < lo || z.Int64() > hi {
			d.addf(n, p, "must be an integer between %d and %d, got %s", lo, hi, abbrev(n.Value, 40))
			return
		}
		v.SetInt(z.Int64())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		z, ok := d.integer(n, p)
		if !ok {
			return
		}
		hi := uint64(1)<<v.Type().Bits() - 1
		if z.Sign() < 0 || !z.IsUint64() || z.Uint64() > hi {
			d.addf(n, p, "must be an integer between 0 and %d, got %s", hi, abbrev(n.Value, 40))
			return
		}
		v.SetUint(z.Uint64())
	case reflect.Float32, reflect.Float64:
		f, ok := number(n)
		if !ok {
			d.addf(n, p, "must be a number, got %s", describe(n))
			return
		}
		if v.Kind() == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			d.addf(n, p, "must be a number within the range of float32, got %s", abbrev(n.Value, 40))
			return
		}
		v.SetFloat(f)
	default:
		d.addf(n, p, "cannot decode into Go type %s", v.Type())
	}
}

// integer parses a YAML integer (also one too large for yaml.v3, which
// types those as floats), reporting a problem if n is not one.
func (d *decoder) integer(n *yaml.Node, p *pathT) (*big.Int, bool) {
	if n.Kind == yaml.ScalarNode {
		if tag := n.ShortTag(); tag == "!!int" || tag == "!!float" {
			if z, ok := parseInteger(n.Value); ok {
				return z, true
			}
		}
	}
	d.addf(n, p, "must be an integer, got %s", describe(n))
	return nil, false
}

func parseInteger(s string) (*big.Int, bool) {
	s = strings.ReplaceAll(s, "_", "")
	if s == "" || len(s) > 400 {
		return nil, false
	}
	return new(big.Int).SetString(s, 0)
}

var specialFloats = map[string]float64{
	".inf": math.Inf(1), ".Inf": math.Inf(1), ".INF": math.Inf(1),
	"+.inf": math.Inf(1), "+.Inf": math.Inf(1), "+.INF": math.Inf(1),
	"-.inf": math.Inf(-1), "-.Inf": math.Inf(-1), "-.INF": math.Inf(-1),
	".nan": math.NaN(), ".NaN": math.NaN(), ".NAN": math.NaN(),
}

// number parses a YAML integer or float.
func number(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode {
		return 0, false
	}
	switch n.ShortTag() {
	case "!!int":
		z, ok := parseInteger(n.Value)
		if !ok {
			return 0, false
		}
		f, _ := new(big.Float).SetInt(z).Float64()
		return f, true
	case "!!float":
		if f, ok := specialFloats[n.Value]; ok {
			return f, true
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		return f, err == nil
	}
	return 0, false
}

func (d *decoder) duration(n *yaml.Node, p *pathT, v reflect.Value) {
	if n.Kind == yaml.ScalarNode {
		if tag := n.ShortTag(); tag != "!!int" && tag != "!!float" {
			if dur, err := time.ParseDuration(n.Value); err == nil {
				v.SetInt(int64(dur))
				return
			}
		}
	}
	d.addf(n, p, "must be a duration like 30s, got %s", describe(n))
}

// natural decodes n into an empty interface.
func (d *decoder) natural(n *yaml.Node, p *pathT, v reflect.Value) {
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for _, pr := range d.pairs(n, p) {
			k := deref(pr.k)
			if k.Kind != yaml.ScalarNode {
				d.addf(pr.k, p, "mapping key must be a string, got %s", describe(k))
				continue
			}
			ev := reflect.New(anyType).Elem()
			d.decode(pr.v, p.key(k.Value), ev)
			m[k.Value] = ev.Interface()
		}
		v.Set(reflect.ValueOf(m))
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			d.decode(c, p.idx(i), reflect.ValueOf(&s[i]).Elem())
		}
		v.Set(reflect.ValueOf(s))
	case yaml.ScalarNode:
		var x any = n.Value
		switch n.ShortTag() {
		case "!!bool":
			if b, err := strconv.ParseBool(n.Value); err == nil {
				x = b
			}
		case "!!int":
			if z, ok := parseInteger(n.Value); ok {
				switch {
				case z.IsInt64() && int64(int(z.Int64())) == z.Int64():
					x = int(z.Int64())
				case z.IsInt64():
					x = z.Int64()
				case z.IsUint64():
					x = z.Uint64()
				default:
					x, _ = new(big.Float).SetInt(z).Float64()
				}
			}
		case "!!float":
			if f, ok := number(n); ok {
				x = f
			}
		}
		v.Set(reflect.ValueOf(x))
	default:
		d.addf(n, p, "unexpected YAML node kind %d", n.Kind)
	}
}

func (d *decoder) structValue(n *yaml.Node, p *pathT, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, p, "must be a mapping, got %s", describe(n))
		return
	}
	info := typeInfo(v.Type())
	start := len(d.probs)
	seen := make([]bool, len(info.fields))
	for _, pr := range d.pairs(n, p) {
		if d.aborted {
			return
		}
		k := deref(pr.k)
		if k.Kind != yaml.ScalarNode {
			d.addf(pr.k, p, "mapping key must be a string, got %s", describe(k))
			continue
		}
		fp := p.key(k.Value)
		i, ok := info.byName[k.Value]
		if !ok {
			if info.inline != nil {
				d.inlineEntry(v, info.inline, k.Value, pr.v, fp)
				continue
			}
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, info.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.addf(pr.k, fp, "%s", msg)
			continue
		}
		f := &info.fields[i]
		seen[i] = true
		if v := deref(pr.v); f.required && isNull(v) && !d.doc.envFailed[v] {
			d.addf(pr.k, fp, "is required")
			continue
		}
		if fv, ok := fieldByIndex(v, f.index); ok {
			d.decode(pr.v, fp, fv)
		}
	}
	if d.aborted {
		return
	}
	for i := range info.fields {
		if info.fields[i].required && !seen[i] {
			d.addf(n, p.key(info.fields[i].name), "is required")
		}
	}
	d.validate(n, p, v, start)
}

func (d *decoder) inlineEntry(v reflect.Value, f *fieldInfo, key string, n *yaml.Node, p *pathT) {
	mv, ok := fieldByIndex(v, f.index)
	if !ok {
		return
	}
	if mv.IsNil() {
		mv.Set(reflect.MakeMap(mv.Type()))
	}
	ev := reflect.New(mv.Type().Elem()).Elem()
	d.decode(d.entry(n, ev.Type()), p, ev)
	mv.SetMapIndex(reflect.ValueOf(key).Convert(mv.Type().Key()), ev)
}

// validate calls v's Validate method, if any, and reports its errors
// unless a problem was already reported (since index start) on the same
// path or an ancestor of it.
func (d *decoder) validate(n *yaml.Node, p *pathT, v reflect.Value, start int) {
	if !v.CanAddr() || !v.Addr().CanInterface() {
		return
	}
	val, ok := v.Addr().Interface().(Validator)
	if !ok {
		return
	}
	errs := val.Validate()
	if len(errs) == 0 {
		return
	}
	base := p.String()
	earlier := make(map[string]bool, len(d.probs)-start)
	for _, q := range d.probs[start:] {
		earlier[q.Path] = true
	}
	for _, fe := range errs {
		full := joinPath(base, fe.Field)
		if coveredBy(full, earlier) {
			continue
		}
		segs, _ := parsePath(fe.Field)
		at, _ := lookup(n, segs)
		d.probs.Addf(d.doc.File, at.Line, at.Column, full, "%s", fe.Msg)
	}
}

// coveredBy reports whether path or one of its ancestors (other than the
// root) is in paths.
func coveredBy(path string, paths map[string]bool) bool {
	if paths[path] {
		return true
	}
	for i := 1; i < len(path); i++ {
		if c := path[i]; (c == '.' || c == '[') && paths[path[:i]] {
			return true
		}
	}
	return false
}

func (d *decoder) mapValue(n *yaml.Node, p *pathT, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.addf(n, p, "must be a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMapWithSize(t, len(n.Content)/2))
	}
	for _, pr := range d.pairs(n, p) {
		if d.aborted {
			return
		}
		k := deref(pr.k)
		if k.Kind != yaml.ScalarNode {
			d.addf(pr.k, p, "mapping key must be a string, got %s", describe(k))
			continue
		}
		kp := p.key(k.Value)
		kv := reflect.New(t.Key()).Elem()
		if t.Key().Kind() == reflect.String {
			kv.SetString(k.Value)
		} else {
			before := len(d.probs)
			d.decode(pr.k, kp, kv)
			if len(d.probs) > before {
				continue
			}
		}
		ev := reflect.New(t.Elem()).Elem()
		if old := v.MapIndex(kv); old.IsValid() {
			ev.Set(old)
		}
		d.decode(d.entry(pr.v, t.Elem()), kp, ev)
		v.SetMapIndex(kv, ev)
	}
}

func (d *decoder) sliceValue(n *yaml.Node, p *pathT, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.addf(n, p, "must be a list, got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, c := range n.Content {
		d.decode(d.entry(c, v.Type().Elem()), p.idx(i), s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) arrayValue(n *yaml.Node, p *pathT, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.addf(n, p, "must be a list, got %s", describe(n))
		return
	}
	if len(n.Content) != v.Len() {
		d.addf(n, p, "must be a list of %d items, got %d", v.Len(), len(n.Content))
	}
	for i, c := range n.Content {
		if i >= v.Len() {
			break
		}
		d.decode(d.entry(c, v.Type().Elem()), p.idx(i), v.Index(i))
	}
}

// entry returns the node to decode for a list item or map value of type t:
// a null entry of struct type decodes as an empty mapping, so that its
// required fields are reported and Validate runs (unlike a null struct
// field, which counts as absent).
func (d *decoder) entry(n *yaml.Node, t reflect.Type) *yaml.Node {
	r := deref(n)
	if !isNull(r) || d.doc.envFailed[r] || !wantsMapping(reflect.PointerTo(t)) {
		return n
	}
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: r.Line, Column: r.Column}
}

type pair struct{ k, v *yaml.Node }

// pairs returns the key/value pairs of mapping m, reporting duplicate keys
// and applying merge keys ("<<"): explicit keys win over merged ones, and
// earlier merged mappings over later ones.
func (d *decoder) pairs(m *yaml.Node, p *pathT) []pair {
	out := make([]pair, 0, len(m.Content)/2)
	var merges []*yaml.Node
	seen := make(map[string]*yaml.Node, len(m.Content)/2)
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kr := deref(k)
		if isMergeKey(kr) {
			merges = append(merges, v)
			continue
		}
		if kr.Kind == yaml.ScalarNode {
			if first, dup := seen[kr.Value]; dup {
				d.addf(k, p.key(kr.Value), "duplicate key %q (first defined at line %d)", kr.Value, first.Line)
				continue
			}
			seen[kr.Value] = k
		}
		out = append(out, pair{k, v})
	}
	for _, mv := range merges {
		out = d.merge(mv, p, seen, out, true)
	}
	return out
}

func (d *decoder) merge(n *yaml.Node, p *pathT, seen map[string]*yaml.Node, out []pair, top bool) []pair {
	if d.aborted {
		return out
	}
	n, leave, ok := d.enter(n, p)
	if !ok {
		return out
	}
	defer leave()
	switch {
	case n.Kind == yaml.MappingNode:
		for _, pr := range d.pairs(n, p) {
			if !d.count(pr.k, p) {
				return out
			}
			if k := deref(pr.k); k.Kind == yaml.ScalarNode {
				if _, ok := seen[k.Value]; ok {
					continue
				}
				seen[k.Value] = pr.k
			}
			out = append(out, pr)
		}
	case n.Kind == yaml.SequenceNode && top:
		for _, c := range n.Content {
			out = d.merge(c, p, seen, out, false)
		}
	default:
		d.addf(n, p, "the value of a merge key (<<) must be a mapping or a list of mappings, got %s", describe(n))
	}
	return out
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind or value for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool", "!!int", "!!float":
			return abbrev(n.Value, 40)
		}
		return strconv.Quote(abbrev(n.Value, 40))
	case yaml.AliasNode:
		return "an alias"
	}
	return "nothing"
}
