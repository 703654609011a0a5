// Package wire holds the byte-level pieces the LLM codecs share: a
// validating, allocation-free JSON reader that hands out raw values, JSON
// writers that append to a caller's buffer, and the server-sent-events
// framing.
//
// The reader matches keys case-sensitively and lets the last of duplicate
// keys win, as encoding/json's Unmarshal into a map and Python's json do, so
// the gateway reads a body the way the provider behind it will. It accepts
// exactly what encoding/json's Valid accepts, nesting limit included.
package wire

import (
	"bytes"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the nesting limit of encoding/json, which the reader shares.
const MaxDepth = 10000

// ErrSyntax reports JSON that encoding/json would not accept.
var ErrSyntax = errors.New("invalid JSON")

// Object walks the members of one JSON object. Its zero value is an empty,
// valid object. Next validates every key and value it passes over; after it
// returns false, Err reports whether the object (and, for a top-level
// object, what follows it) was well formed.
type Object struct {
	b     []byte
	pos   int // next byte to read
	depth int
	state int8 // 0: before first member, 1: after a member, 2: done, -1: error
	top   bool
	// valid is set when b is known to be valid JSON (a value a walker
	// handed out): values are then skipped without checking them again.
	valid bool
	keys  Keys // nil: keys are not reported
}

// Keys is told of the structure of a walk that checks it (see
// [Object.Check]): Open when an object or array starts, Key for each key
// of an object with its offset in the walked bytes, Elem before each
// element of an array, and Close when the container ends well formed.
type Keys interface {
	Open(object bool)
	Key(raw []byte, off int)
	Elem()
	Close()
}

// Check makes the walk report this object, and every container within
// it, to k. It must be called before Next.
func (o *Object) Check(k Keys) {
	if k != nil && o.state == 0 {
		o.keys = k
		k.Open(true)
	}
}

// ParseObject returns a walker over the object that makes up all of b,
// surrounded by optional white space. ok is false if b holds something else
// (use [Valid] to tell a malformed body from a well-formed non-object).
func ParseObject(b []byte) (o Object, ok bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Object{state: 2}, false
	}
	return Object{b: b, pos: i + 1, depth: 1, top: true}, true
}

// ObjectOf returns a walker over raw, a value handed out by a walker, which
// is known to be valid. ok is false if raw is not an object.
func ObjectOf(raw []byte) (o Object, ok bool) {
	if len(raw) == 0 || raw[0] != '{' {
		return Object{state: 2}, false
	}
	return Object{b: raw, pos: 1, depth: 1, valid: true}, true
}

// Next returns the next member's raw key (quotes included: see [KeyIs] and
// [Key]) and raw value, or ok false at the end of the object or at the
// first syntax error.
func (o *Object) Next() (key, value []byte, ok bool) {
	switch o.state {
	case 2, -1:
		return nil, nil, false
	}
	b := o.b
	i := skipWS(b, o.pos)
	if i >= len(b) {
		return o.fail()
	}
	if b[i] == '}' {
		if o.state == 1 || o.state == 0 {
			o.pos = i + 1
			o.state = 2
			if o.keys != nil {
				o.keys.Close()
			}
			if o.top && skipWS(b, o.pos) != len(b) {
				o.state = -1
			}
		}
		return nil, nil, false
	}
	if o.state == 1 {
		if b[i] != ',' {
			return o.fail()
		}
		i = skipWS(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		return o.fail()
	}
	kend := skipString(b, i, o.valid)
	if kend < 0 {
		return o.fail()
	}
	key = b[i:kend]
	if o.keys != nil {
		o.keys.Key(key, i)
	}
	i = skipWS(b, kend)
	if i >= len(b) || b[i] != ':' {
		return o.fail()
	}
	i = skipWS(b, i+1)
	vend := skipValue(b, i, o.depth, o.valid, o.keys)
	if vend < 0 {
		return o.fail()
	}
	o.pos, o.state = vend, 1
	return key, b[i:vend:vend], true
}

// Err returns nil if the walk ended at a well-formed end of the object, and
// ErrSyntax otherwise. It is meaningful once Next has returned false.
func (o *Object) Err() error {
	if o.state == 2 {
		return nil
	}
	return ErrSyntax
}

func (o *Object) fail() ([]byte, []byte, bool) {
	o.state = -1
	return nil, nil, false
}

// Array walks the elements of one JSON array handed out by a walker.
type Array struct {
	b     []byte
	pos   int
	depth int
	state int8
	valid bool // as for Object
	keys  Keys // as for Object
}

// ArrayOf returns a walker over raw, a value handed out by a walker. ok is
// false if raw is not an array.
func ArrayOf(raw []byte) (a Array, ok bool) {
	if len(raw) == 0 || raw[0] != '[' {
		return Array{state: 2}, false
	}
	return Array{b: raw, pos: 1, depth: 1, valid: true}, true
}

// Next returns the next element's raw value, or ok false at the end or at a
// syntax error.
func (a *Array) Next() (value []byte, ok bool) {
	switch a.state {
	case 2, -1:
		return nil, false
	}
	b := a.b
	i := skipWS(b, a.pos)
	if i >= len(b) {
		a.state = -1
		return nil, false
	}
	if b[i] == ']' {
		a.pos, a.state = i+1, 2
		if a.keys != nil {
			a.keys.Close()
		}
		return nil, false
	}
	if a.state == 1 {
		if b[i] != ',' {
			a.state = -1
			return nil, false
		}
		i = skipWS(b, i+1)
	}
	if a.keys != nil {
		a.keys.Elem()
	}
	end := skipValue(b, i, a.depth, a.valid, a.keys)
	if end < 0 {
		a.state = -1
		return nil, false
	}
	a.pos, a.state = end, 1
	return b[i:end:end], true
}

// Err is as for [Object.Err].
func (a *Array) Err() error {
	if a.state == 2 {
		return nil
	}
	return ErrSyntax
}

// Valid reports whether b is one JSON value, as encoding/json's Valid does.
func Valid(b []byte) bool {
	i := skipWS(b, 0)
	end := skipValue(b, i, 0, false, nil)
	return end >= 0 && skipWS(b, end) == len(b)
}

// ValidKeys is Valid that also reports every container of b to k (see
// [Keys]).
func ValidKeys(b []byte, k Keys) bool {
	i := skipWS(b, 0)
	end := skipValue(b, i, 0, false, k)
	return end >= 0 && skipWS(b, end) == len(b)
}

// Kind names the type of a raw value by its first byte.
type Kind byte

// The kinds of raw values.
const (
	Invalid Kind = 0
	Null    Kind = 'n'
	Bool    Kind = 'b'
	Number  Kind = '0'
	String  Kind = '"'
	Obj     Kind = '{'
	Arr     Kind = '['
)

// KindOf returns the kind of a raw value handed out by a walker; a nil raw
// (an absent member) is Invalid.
func KindOf(raw []byte) Kind {
	if len(raw) == 0 {
		return Invalid
	}
	switch c := raw[0]; c {
	case 'n':
		return Null
	case 't', 'f':
		return Bool
	case '"', '{', '[':
		return Kind(c)
	}
	return Number
}

// Absent reports whether a member is missing or null: the JSON APIs the
// codecs read treat both alike.
func Absent(raw []byte) bool { return len(raw) == 0 || raw[0] == 'n' }

// KeyIs reports whether the raw key (quotes included) decodes to name.
func KeyIs(raw []byte, name string) bool {
	if len(raw) == len(name)+2 && string(raw[1:len(raw)-1]) == name {
		return true
	}
	if len(raw) <= len(name)+2 || plain(raw) {
		return false
	}
	var buf [64]byte
	s, ok := AppendUnquote(buf[:0], raw)
	return ok && string(s) == name
}

// Key returns the decoded raw key, using scratch when it has escapes.
func Key(raw, scratch []byte) []byte {
	if plain(raw) {
		return raw[1 : len(raw)-1]
	}
	s, _ := AppendUnquote(scratch[:0], raw)
	return s
}

// Str returns the bytes a raw JSON string decodes to: a sub-slice of raw when
// it holds no escapes, otherwise the decoding appended to scratch[:0]. ok is
// false if raw is not a string.
func Str(raw, scratch []byte) (s []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if plain(raw) {
		return raw[1 : len(raw)-1 : len(raw)-1], true
	}
	return AppendUnquote(scratch[:0], raw)
}

// StringOf returns a raw JSON string decoded as a Go string.
func StringOf(raw []byte) (string, bool) {
	var buf [128]byte
	s, ok := Str(raw, buf[:0])
	return string(s), ok
}

// Int returns a raw JSON number that is an integer in the range of int64.
// Numbers with a fraction or exponent that are whole ("2.0", "1e3") count,
// as they do for Python's int(float(x)); others do not.
func Int(raw []byte) (int64, bool) {
	if KindOf(raw) != Number {
		return 0, false
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != float64(int64(f)) || f < -(1<<63) || f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}

// Float returns a raw JSON number as a float64.
func Float(raw []byte) (float64, bool) {
	if KindOf(raw) != Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return f, err == nil
}

// BoolOf returns a raw JSON boolean.
func BoolOf(raw []byte) (v, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// plain reports whether a raw string decodes to its inner bytes: it has no
// escapes and is valid UTF-8.
func plain(raw []byte) bool {
	ascii := true
	for _, c := range raw {
		if c == '\\' {
			return false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return ascii || utf8.Valid(raw)
}

// AppendUnquote appends the decoding of the raw JSON string raw to dst.
// Invalid UTF-8 and unpaired surrogates become U+FFFD, as with
// encoding/json. raw must be a well-formed string handed out by a walker.
func AppendUnquote(dst, raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst, false
	}
	s := raw[1 : len(raw)-1]
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return dst, false
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(s, i+2)
				if !ok {
					return dst, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2, ok := hex4(s, i+2); ok && i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, false
			}
			i += 2
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst, true
}

// Unescape decodes the escape sequence at the start of s, which starts
// with a backslash, and returns the rune and the sequence's length, or
// n == 0 if it is not valid. An unpaired surrogate decodes as U+FFFD, as
// with encoding/json.
func Unescape(s []byte) (r rune, n int) {
	if len(s) < 2 || s[0] != '\\' {
		return 0, 0
	}
	switch c := s[1]; c {
	case '"', '\\', '/':
		return rune(c), 2
	case 'b':
		return '\b', 2
	case 'f':
		return '\f', 2
	case 'n':
		return '\n', 2
	case 'r':
		return '\r', 2
	case 't':
		return '\t', 2
	case 'u':
		r, ok := hex4(s, 2)
		if !ok {
			return 0, 0
		}
		if !utf16.IsSurrogate(r) {
			return r, 6
		}
		if len(s) >= 8 && s[6] == '\\' && s[7] == 'u' {
			if r2, ok := hex4(s, 8); ok {
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					return d, 12
				}
			}
		}
		return utf8.RuneError, 6
	}
	return 0, 0
}

// hex4 reads four hex digits at s[i:].
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func skipWS(b []byte, i int) int {
	for ; i < len(b); i++ {
		if c := b[i]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
	}
	return i
}

// skipValue returns the end of the value starting at b[i], or -1. depth is
// the nesting of the container holding it. valid says b is known to be
// valid JSON, so that only the value's end needs finding; keys, when not
// nil, is told of the containers passed over.
func skipValue(b []byte, i, depth int, valid bool, keys Keys) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i, valid)
	case '{', '[':
		if valid && keys == nil {
			return skipValidContainer(b, i)
		}
		return skipContainer(b, i, depth+1, valid, keys)
	case 't':
		return skipWord(b, i, "true")
	case 'f':
		return skipWord(b, i, "false")
	case 'n':
		return skipWord(b, i, "null")
	}
	return skipNumber(b, i)
}

// skipContainer skips an object or array opened at b[i] with a walker over
// it, so the grammar lives in one place.
func skipContainer(b []byte, i, depth int, valid bool, keys Keys) int {
	if depth > MaxDepth {
		return -1
	}
	if b[i] == '{' {
		o := Object{b: b, pos: i + 1, depth: depth, valid: valid}
		o.Check(keys)
		for {
			if _, _, ok := o.Next(); !ok {
				break
			}
		}
		if o.state != 2 {
			return -1
		}
		return o.pos
	}
	a := Array{b: b, pos: i + 1, depth: depth, valid: valid}
	if keys != nil {
		a.keys = keys
		keys.Open(false)
	}
	for {
		if _, ok := a.Next(); !ok {
			break
		}
	}
	if a.state != 2 {
		return -1
	}
	return a.pos
}

// StringEnd returns the end of the string opened at b[i] in b, which a
// walker handed out (valid JSON), or -1.
func StringEnd(b []byte, i int) int { return skipValidString(b, i) }

// skipValidString returns the end of the string opened at b[i], which is
// known to be valid: the first quote not escaped.
func skipValidString(b []byte, i int) int {
	for i++; ; {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		n := 0 // backslashes before the quote
		for n < i && b[i-1-n] == '\\' {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// skipValidContainer returns the end of the object or array opened at
// b[i], which is known to be valid, by counting brackets outside strings.
func skipValidContainer(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			if i = skipValidString(b, i); i < 0 {
				return -1
			}
			i--
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

func skipWord(b []byte, i int, w string) int {
	if len(b)-i >= len(w) && string(b[i:i+len(w)]) == w {
		return i + len(w)
	}
	return -1
}

// plainByte marks the bytes that stand for themselves in a JSON string:
// every byte but controls, '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipString returns the end of the string opened at b[i], or -1.
func skipString(b []byte, i int, valid bool) int {
	if valid {
		return skipValidString(b, i)
	}
	for i++; i < len(b); {
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i == len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					return -1
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
	return -1
}

// skipNumber returns the end of the number starting at b[i], or -1.
func skipNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// StrAppend is Str for decoders that hand out several strings at once: a
// string with escapes is decoded onto the end of *arena, so strings
// decoded earlier stay intact. Reset the arena (to (*arena)[:0]) once the
// strings are not needed.
func StrAppend(raw []byte, arena *[]byte) (s []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if plain(raw) {
		return raw[1 : len(raw)-1 : len(raw)-1], true
	}
	start := len(*arena)
	b, ok := AppendUnquote(*arena, raw)
	*arena = b
	return b[start:len(b):len(b)], ok
}
