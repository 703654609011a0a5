package openai

// The JSON reading of this package is wire's validating walker; these are
// the few helpers on top of it that only this package needs.

import "github.com/phasegate/phasegate/llm/internal/wire"

// isObject and isArray report the kind of a raw value.
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }
func isArray(v []byte) bool  { return len(v) > 0 && v[0] == '[' }
func isString(v []byte) bool { return len(v) > 0 && v[0] == '"' }
func isNull(v []byte) bool   { return string(v) == "null" }

// member returns the raw value of the last member called name of the valid
// raw object obj, or nil.
func member(obj []byte, name string) []byte {
	var val []byte
	it, _ := wire.ObjectOf(obj)
	for {
		k, v, ok := it.Next()
		if !ok {
			return val
		}
		if wire.KeyIs(k, name) {
			val = v
		}
	}
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

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
