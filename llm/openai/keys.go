package openai

// One reading of a request body: decoders disagree on duplicate keys (the
// first or the last one wins, or the body is an error) and on how loosely a
// key names a field (Go's encoding/json ignores case; encoding/json/v2 with
// case-insensitive matching also ignores dashes and underscores), so a body
// that relies on either can mean one thing to the gateway and another to the
// upstream. keyCheck finds duplicate keys anywhere; fieldSet finds keys that
// loosely name a field the gateway reads without naming it exactly.

import (
	"bytes"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/phasegate/phasegate/llm/internal/wire"
)

// keyCheck, carried by a walk, finds the first object in which two members
// have the same decoded name, and the path of that name. Keys are held as
// offsets (8 bytes each) so that a body of many small keys costs little
// more than its own size; keyChecks are pooled.
type keyCheck struct {
	b      []byte
	keys   []keyRef // names of the members of the objects being walked
	arena  []byte   // decoded names of keys with escapes or non-ASCII bytes
	frames []frame  // the containers being walked, outermost first
	dup    []byte   // path of the first duplicate key; nil while none
}

// keyRef is a decoded name: b[off:end], or arena[off&^inArena:end] when
// off has the inArena bit.
type keyRef struct{ off, end uint32 }

const inArena = 1 << 31

// maxCheckedBody bounds the bodies a keyCheck can walk: offsets fit in 31
// bits even when every byte of a key decodes to a 3-byte U+FFFD.
const maxCheckedBody = 1 << 29

// frame is a container being walked.
type frame struct {
	obj   bool
	idx   int // an array's current element
	kbase int // len(keys) when the container opened
	abase int // len(arena) then
}

// small is the largest object whose keys are compared pairwise rather than
// sorted.
const small = 8

var keyChecks = sync.Pool{New: func() any { return new(keyCheck) }}

// newKeyCheck returns a pooled keyCheck for walking b.
func newKeyCheck(b []byte) *keyCheck {
	kc := keyChecks.Get().(*keyCheck)
	kc.b = b
	return kc
}

// release returns kc to the pool, unless it grew large.
func (kc *keyCheck) release() {
	if cap(kc.keys) > 1<<16 || cap(kc.arena) > 1<<16 || cap(kc.frames) > 1<<12 {
		return
	}
	kc.b, kc.dup = nil, nil
	kc.keys, kc.arena, kc.frames = kc.keys[:0], kc.arena[:0], kc.frames[:0]
	keyChecks.Put(kc)
}

func (kc *keyCheck) Open(obj bool) {
	if kc.dup != nil {
		return
	}
	kc.frames = append(kc.frames, frame{obj: obj, idx: -1, kbase: len(kc.keys), abase: len(kc.arena)})
}

// key records the raw key b[off:off+len(raw)] of the innermost object.
func (kc *keyCheck) Key(raw []byte, off int) {
	if kc.dup != nil {
		return
	}
	if inner := raw[1 : len(raw)-1]; isPlainASCII(inner) {
		kc.keys = append(kc.keys, keyRef{uint32(off + 1), uint32(off + len(raw) - 1)})
		return
	}
	start := len(kc.arena)
	kc.arena, _ = wire.AppendUnquote(kc.arena, raw)
	kc.keys = append(kc.keys, keyRef{uint32(start) | inArena, uint32(len(kc.arena))})
}

// elem counts an element of the innermost array.
func (kc *keyCheck) Elem() {
	if kc.dup == nil {
		kc.frames[len(kc.frames)-1].idx++
	}
}

// close ends the innermost container, looking for a duplicate key when it
// is an object.
func (kc *keyCheck) Close() {
	if kc.dup != nil {
		return
	}
	top := len(kc.frames) - 1
	f := kc.frames[top]
	if f.obj {
		if d, ok := kc.duplicate(kc.keys[f.kbase:]); ok {
			kc.dup = kc.path(d)
			return
		}
	}
	kc.frames = kc.frames[:top]
	kc.keys, kc.arena = kc.keys[:f.kbase], kc.arena[:f.abase]
}

func (kc *keyCheck) name(k keyRef) []byte {
	if k.off&inArena != 0 {
		return kc.arena[k.off&^inArena : k.end]
	}
	return kc.b[k.off:k.end]
}

// duplicate returns a key of ks whose name appears twice. It sorts a large
// ks in place.
func (kc *keyCheck) duplicate(ks []keyRef) (keyRef, bool) {
	if len(ks) <= small {
		for i := 1; i < len(ks); i++ {
			for j := range i {
				if bytes.Equal(kc.name(ks[i]), kc.name(ks[j])) {
					return ks[i], true
				}
			}
		}
		return keyRef{}, false
	}
	slices.SortFunc(ks, func(a, b keyRef) int { return bytes.Compare(kc.name(a), kc.name(b)) })
	for i := 1; i < len(ks); i++ {
		if bytes.Equal(kc.name(ks[i]), kc.name(ks[i-1])) {
			return ks[i], true
		}
	}
	return keyRef{}, false
}

// path renders the path of the duplicate key d of the innermost object,
// such as messages[1].content. The keys of the enclosing objects are still
// in walk order: only a closing object's keys are sorted.
func (kc *keyCheck) path(d keyRef) []byte {
	var p []byte
	for j, f := range kc.frames {
		switch {
		case j == len(kc.frames)-1:
			p = appendPathKey(p, kc.name(d))
		case f.obj:
			p = appendPathKey(p, kc.name(kc.keys[kc.frames[j+1].kbase-1]))
		default:
			p = appendPathIndex(p, f.idx)
		}
	}
	return p
}

// maxPathKey bounds how much of a key a path shows.
const maxPathKey = 64

// appendPathKey appends .name to a path (name alone at its start), or
// ["name"] when name is not a plain identifier; a long name is cut.
func appendPathKey(p, name []byte) []byte {
	plain := len(name) > 0 && len(name) <= maxPathKey
	for _, c := range name {
		if !isWordByte(c) && c != '-' && c != '$' {
			plain = false
			break
		}
	}
	if plain {
		if len(p) > 0 {
			p = append(p, '.')
		}
		return append(p, name...)
	}
	cut := false
	if len(name) > maxPathKey {
		n := maxPathKey
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		name, cut = name[:n], true
	}
	s := string(name)
	if cut {
		s += "…"
	}
	p = append(p, '[')
	p = wire.AppendString(p, s)
	return append(p, ']')
}

func appendPathIndex(p []byte, i int) []byte {
	p = append(p, '[')
	p = appendInt(p, i)
	return append(p, ']')
}

func appendInt(p []byte, i int) []byte {
	var buf [20]byte
	n := len(buf)
	for {
		n--
		buf[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return append(p, buf[n:]...)
}

// mayFold reports whether the raw key may fold to a name of one of the
// lengths in lens (bit n: n bytes): an ASCII key without escapes folds to
// its length less its dashes and underscores; any other key may fold to
// any.
func mayFold(raw []byte, lens uint64) bool {
	n := 0
	for _, c := range raw[1 : len(raw)-1] {
		switch {
		case c == '\\' || c >= utf8.RuneSelf:
			return true
		case c != '_' && c != '-':
			n++
		}
	}
	return n <= maxFolded && lens&(1<<n) != 0
}

func isWordByte(c byte) bool {
	return c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// maxFolded bounds the folded names compared: longer ones cannot equal a
// field's.
const maxFolded = 32

// foldKey appends to dst the decoded name of the raw key folded as the
// loosest decoder matches names: ASCII letters in lower case, dashes and
// underscores dropped, and the two non-ASCII letters whose case folds to
// ASCII (U+212A KELVIN SIGN, U+017F LATIN SMALL LETTER LONG S) as k and s.
// It reports false if the name cannot loosely equal a field's name (which
// are plain ASCII): it has another non-ASCII character, or folds to more
// than maxFolded bytes.
func foldKey(dst, raw []byte) ([]byte, bool) {
	s := raw[1 : len(raw)-1]
	n0 := len(dst)
	for len(s) > 0 {
		r, size := rune(s[0]), 1
		switch {
		case r == '\\':
			if r, size = wire.Unescape(s); size == 0 {
				return dst, false
			}
		case r >= utf8.RuneSelf:
			r, size = utf8.DecodeRune(s)
		}
		s = s[size:]
		switch {
		case r == '_' || r == '-':
			continue
		case 'A' <= r && r <= 'Z':
			r += 'a' - 'A'
		case r == '\u212a':
			r = 'k'
		case r == '\u017f':
			r = 's'
		case r >= utf8.RuneSelf:
			return dst, false
		}
		if len(dst)-n0 == maxFolded {
			return dst, false
		}
		dst = append(dst, byte(r))
	}
	return dst, true
}

// fieldSet is the fields the gateway reads in one kind of object.
type fieldSet struct {
	names  []string
	folded []string
	lens   uint64 // bit n set: a folded name is n bytes long
}

func newFieldSet(names ...string) fieldSet {
	fs := fieldSet{names: names}
	for _, n := range names {
		f, _ := foldKey(nil, []byte(`"`+n+`"`))
		fs.folded = append(fs.folded, string(f))
		fs.lens |= 1 << len(f)
	}
	return fs
}

// lookup returns the index of the field the raw key names exactly (after
// unescaping), or -1. ambiguous reports a key that names no field exactly
// but one loosely, such as "Content" or "con_tent" for "content": some
// upstreams read it as that field, the gateway would not.
func (fs *fieldSet) lookup(raw []byte) (i int, ambiguous bool) {
	for i, n := range fs.names {
		if wire.KeyIs(raw, n) {
			return i, false
		}
	}
	if !mayFold(raw, fs.lens) {
		return -1, false
	}
	var buf [maxFolded]byte
	f, ok := foldKey(buf[:0], raw)
	if !ok {
		return -1, false
	}
	for i, n := range fs.folded {
		if string(f) == n {
			return i, true
		}
	}
	return -1, false
}

// ambiguousKey is the error for the raw key k at path, which names field
// loosely.
func ambiguousKey(path []byte, k []byte, field string) *RequestError {
	name, _ := wire.AppendUnquote(nil, k)
	return &RequestError{
		Field: string(appendPathKey(path, name)),
		Msg:   "ambiguous key: some upstreams read it as " + string(wire.AppendString(nil, field)),
	}
}
