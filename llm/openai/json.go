package openai

// A small allocation-free JSON scanner. It validates exactly what
// encoding/json's Valid accepts (including its nesting limit) while walking
// objects and arrays, and hands out the raw bytes of keys and values, so
// that only the fields a caller needs are ever decoded. A walk can also
// carry a keyCheck, which finds duplicate keys in every object it passes
// through. Where duplicates are allowed (responses), callers resolve them as
// encoding/json and Python's json do: the last one wins.

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is the nesting limit of encoding/json.
const maxDepth = 10000

// strPlain reports the bytes that stand for themselves inside a JSON string
// and need no further checks while skipping one.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// skipSpace returns the index of the first non-whitespace byte at or after i.
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value that starts at b[i],
// or -1 if there is no valid value there. depth is the nesting depth of the
// enclosing container (0 at top level).
func skipValue(b []byte, i, depth int, kc *keyCheck) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '{':
		it := newObjIter(b, i, depth)
		it.check(kc)
		for {
			if _, _, ok := it.next(); !ok {
				break
			}
		}
		return it.end()
	case '[':
		it := newArrIter(b, i, depth)
		it.check(kc)
		for {
			if _, ok := it.next(); !ok {
				break
			}
		}
		return it.end()
	case '"':
		return skipString(b, i)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			return skipNumber(b, i)
		}
		return -1
	}
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// skipString returns the index just past the string starting at b[i] == '"',
// or -1.
func skipString(b []byte, i int) int {
	i++
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(b)-i < 6 {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if hexVal(h) < 0 {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default: // control character
			return -1
		}
	}
}

func hexVal(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber returns the index just past the number starting at b[i], or -1.
func skipNumber(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

const (
	iterFirst = iota
	iterMore
	iterDone
	iterFailed
)

// objIter walks the members of a JSON object, validating them.
type objIter struct {
	b     []byte
	i     int
	depth int
	state int
	kc    *keyCheck // nil: duplicate keys are not looked for
}

// newObjIter starts walking the object at b[i] == '{' nested in a container
// of the given depth.
func newObjIter(b []byte, i, depth int) objIter {
	it := objIter{b: b, i: i + 1, depth: depth + 1}
	if it.depth > maxDepth {
		it.state = iterFailed
	}
	return it
}

// check makes the walk look for duplicate keys in this object and in every
// object within it, reporting them to kc. It must be called before next.
func (it *objIter) check(kc *keyCheck) {
	if kc != nil && it.state == iterFirst {
		it.kc = kc
		kc.open(true)
	}
}

// next returns the raw key (with its quotes) and raw value of the next
// member. It returns ok == false at the end of the object or on a syntax
// error; end tells them apart.
func (it *objIter) next() (key, val []byte, ok bool) {
	if it.state >= iterDone {
		return nil, nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i >= len(b) {
		return it.fail()
	}
	if it.state == iterFirst {
		it.state = iterMore
		if b[i] == '}' {
			return it.done(i)
		}
	} else {
		switch b[i] {
		case '}':
			return it.done(i)
		case ',':
			i = skipSpace(b, i+1)
		default:
			return it.fail()
		}
	}
	if i >= len(b) || b[i] != '"' {
		return it.fail()
	}
	k := i
	if i = skipString(b, i); i < 0 {
		return it.fail()
	}
	key = b[k:i]
	if it.kc != nil {
		it.kc.key(key, k)
	}
	if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
		return it.fail()
	}
	v := skipSpace(b, i+1)
	if i = skipValue(b, v, it.depth, it.kc); i < 0 {
		return it.fail()
	}
	it.i = i
	return key, b[v:i], true
}

// done ends the walk at the closing brace b[i].
func (it *objIter) done(i int) ([]byte, []byte, bool) {
	it.i, it.state = i+1, iterDone
	if it.kc != nil {
		it.kc.close()
	}
	return nil, nil, false
}

func (it *objIter) fail() ([]byte, []byte, bool) {
	it.state = iterFailed
	return nil, nil, false
}

// end returns the index just past the object once next has returned false,
// or -1 if the object is invalid.
func (it *objIter) end() int {
	if it.state != iterDone {
		return -1
	}
	return it.i
}

// arrIter walks the elements of a JSON array, validating them.
type arrIter struct {
	b     []byte
	i     int
	depth int
	state int
	kc    *keyCheck // nil: duplicate keys are not looked for
}

// newArrIter starts walking the array at b[i] == '[' nested in a container
// of the given depth.
func newArrIter(b []byte, i, depth int) arrIter {
	it := arrIter{b: b, i: i + 1, depth: depth + 1}
	if it.depth > maxDepth {
		it.state = iterFailed
	}
	return it
}

// check makes the walk look for duplicate keys in every object within the
// array, reporting them to kc. It must be called before next.
func (it *arrIter) check(kc *keyCheck) {
	if kc != nil && it.state == iterFirst {
		it.kc = kc
		kc.open(false)
	}
}

// next returns the raw bytes of the next element, or ok == false at the end
// of the array or on a syntax error; end tells them apart.
func (it *arrIter) next() (val []byte, ok bool) {
	if it.state >= iterDone {
		return nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i >= len(b) {
		it.state = iterFailed
		return nil, false
	}
	if it.state == iterFirst {
		it.state = iterMore
		if b[i] == ']' {
			return it.done(i)
		}
	} else {
		switch b[i] {
		case ']':
			return it.done(i)
		case ',':
			i = skipSpace(b, i+1)
		default:
			it.state = iterFailed
			return nil, false
		}
	}
	v := i
	if it.kc != nil {
		it.kc.elem()
	}
	if i = skipValue(b, v, it.depth, it.kc); i < 0 {
		it.state = iterFailed
		return nil, false
	}
	it.i = i
	return b[v:i], true
}

// done ends the walk at the closing bracket b[i].
func (it *arrIter) done(i int) ([]byte, bool) {
	it.i, it.state = i+1, iterDone
	if it.kc != nil {
		it.kc.close()
	}
	return nil, false
}

// end returns the index just past the array once next has returned false,
// or -1 if the array is invalid.
func (it *arrIter) end() int {
	if it.state != iterDone {
		return -1
	}
	return it.i
}

// validJSON reports whether b is a single valid JSON value surrounded by
// optional whitespace, like encoding/json's Valid.
func validJSON(b []byte) bool {
	i := skipValue(b, skipSpace(b, 0), 0, nil)
	return i >= 0 && skipSpace(b, i) == len(b)
}

// topObject starts walking b as a top-level JSON object. It returns false
// if b does not start (after whitespace) with '{'. After the walk, call
// topEnd to check that the object was valid and nothing follows it.
func topObject(b []byte) (objIter, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return objIter{}, false
	}
	return newObjIter(b, i, 0), true
}

// topEnd reports whether a finished top-level walk was valid.
func topEnd(it *objIter) bool {
	end := it.end()
	return end >= 0 && skipSpace(it.b, end) == len(it.b)
}

// keyIs reports whether the raw, quoted key decodes to name, which must not
// contain characters that need escaping.
func keyIs(raw []byte, name string) bool {
	if len(raw) == len(name)+2 {
		return string(raw[1:len(raw)-1]) == name
	}
	// An escaped key is longer than its name. Reject quickly on the first
	// byte when it is not an escape.
	if len(raw) < len(name)+2 || (len(name) > 0 && raw[1] != name[0] && raw[1] != '\\') ||
		bytes.IndexByte(raw, '\\') < 0 {
		return false
	}
	var buf [64]byte
	s, ok := appendUnquote(buf[:0], raw)
	return ok && string(s) == name
}

// isObject and isArray report the kind of a raw value.
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }
func isArray(v []byte) bool  { return len(v) > 0 && v[0] == '[' }
func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }
func isNull(v []byte) bool   { return string(v) == "null" }

// member returns the raw value of the last member called name of the valid
// raw object obj, or nil.
func member(obj []byte, name string) []byte {
	var val []byte
	it := newObjIter(obj, 0, 0)
	for {
		k, v, ok := it.next()
		if !ok {
			return val
		}
		if keyIs(k, name) {
			val = v
		}
	}
}

// appendUnquote appends the decoded contents of the raw JSON string raw
// (with its quotes) to dst. Like encoding/json, it replaces invalid UTF-8
// and unpaired surrogate escapes with U+FFFD. It reports false if raw is not
// a valid string.
func appendUnquote(dst, raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return dst, false
	}
	s := raw[1 : len(raw)-1]
	for len(s) > 0 {
		i := 0
		for i < len(s) && strPlain[s[i]] {
			i++
		}
		if run := s[:i]; utf8.Valid(run) {
			dst = append(dst, run...)
		} else {
			for len(run) > 0 {
				r, size := utf8.DecodeRune(run)
				dst = utf8.AppendRune(dst, r)
				run = run[size:]
			}
		}
		s = s[i:]
		if len(s) == 0 {
			break
		}
		r, n := unescape(s)
		if n == 0 { // quote, control character or bad escape
			return dst, false
		}
		if r < utf8.RuneSelf {
			dst = append(dst, byte(r))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		s = s[n:]
	}
	return dst, true
}

// unescape decodes the escape sequence at the start of s, which must start
// with a backslash, and returns the rune and the length of the sequence, or
// n == 0 if it is not valid. Like encoding/json, it decodes an unpaired
// surrogate as U+FFFD.
func unescape(s []byte) (r rune, n int) {
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
		r := getu4(s)
		if r < 0 {
			return 0, 0
		}
		if utf16.IsSurrogate(r) {
			if dec := utf16.DecodeRune(r, getu4(s[6:])); dec != unicode.ReplacementChar {
				return dec, 12
			}
			return unicode.ReplacementChar, 6
		}
		return r, 6
	}
	return 0, 0
}

// getu4 decodes a \uXXXX escape at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		v := hexVal(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | v
	}
	return r
}

// decodeString decodes the raw JSON string raw.
func decodeString(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
			return string(s), true
		}
	}
	var buf [128]byte
	b, ok := appendUnquote(buf[:0], raw)
	if !ok {
		return "", false
	}
	return string(b), true
}

// decodeInt decodes a raw JSON number that is an integer in the range of
// int, as encoding/json would decode it into an int.
func decodeInt(raw []byte) (int, bool) {
	neg := len(raw) > 0 && raw[0] == '-'
	digits := raw
	if neg {
		digits = raw[1:]
	}
	if len(digits) == 0 {
		return 0, false
	}
	const cutoff = uint64(1) << 63 // magnitude of math.MinInt64
	var n uint64
	for _, c := range digits {
		if !isDigit(c) {
			return 0, false
		}
		d := uint64(c - '0')
		if n > cutoff/10 || (n == cutoff/10 && d > cutoff%10) {
			return 0, false
		}
		n = n*10 + d
	}
	var v int64
	switch {
	case neg && n <= cutoff:
		v = -int64(n-1) - 1
	case !neg && n < cutoff:
		v = int64(n)
	default:
		return 0, false
	}
	if int64(int(v)) != v {
		return 0, false
	}
	return int(v), true
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s to dst as a JSON string. Invalid UTF-8 is replaced
// with U+FFFD, so the result is always valid JSON (and valid UTF-8).
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript in older engines.
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
