package wire

import (
	"github.com/phasegate/phasegate/llm"
)

// The helpers below decode one member of a request body into a field of
// the neutral model. An absent or null member leaves the field alone; a
// member of the wrong type gives a 400 *llm.Error naming its path.

// BodyError turns an error from Top into a 400 *llm.Error.
func BodyError(err error) error {
	return llm.InvalidRequest("%s", err.Error())
}

// TypeError is the 400 error for a value at p that is not what it must be.
func TypeError(p *Path, what string) error {
	return llm.FieldError(p.String(), "must be "+what)
}

// DecodeString decodes a string member.
func DecodeString(raw []byte, p Path, dst *string) error {
	if Absent(raw) {
		return nil
	}
	s, ok := StringOf(raw)
	if !ok {
		return TypeError(&p, "a string")
	}
	*dst = s
	return nil
}

// DecodeBool decodes a boolean member.
func DecodeBool(raw []byte, p Path, dst *bool) error {
	if Absent(raw) {
		return nil
	}
	v, ok := BoolOf(raw)
	if !ok {
		return TypeError(&p, "a boolean")
	}
	*dst = v
	return nil
}

// DecodeBoolPtr decodes a boolean member into a pointer.
func DecodeBoolPtr(raw []byte, p Path, dst **bool) error {
	if Absent(raw) {
		return nil
	}
	var v bool
	if err := DecodeBool(raw, p, &v); err != nil {
		return err
	}
	*dst = &v
	return nil
}

// DecodeInt decodes a non-negative integer member.
func DecodeInt(raw []byte, p Path, dst *int64) error {
	if Absent(raw) {
		return nil
	}
	n, ok := Int(raw)
	if !ok || n < 0 {
		return TypeError(&p, "a non-negative integer")
	}
	*dst = n
	return nil
}

// DecodeFloat decodes a number member into a pointer.
func DecodeFloat(raw []byte, p Path, dst **float64) error {
	if Absent(raw) {
		return nil
	}
	f, ok := Float(raw)
	if !ok {
		return TypeError(&p, "a number")
	}
	*dst = &f
	return nil
}

// DecodeStrings decodes an array of strings, or a single string when
// single is set (Chat's "stop").
func DecodeStrings(raw []byte, p Path, single bool, dst *[]string) error {
	if Absent(raw) {
		return nil
	}
	if single && KindOf(raw) == String {
		s, _ := StringOf(raw)
		*dst = []string{s}
		return nil
	}
	a, ok := ArrayOf(raw)
	if !ok {
		if single {
			return TypeError(&p, "a string or an array of strings")
		}
		return TypeError(&p, "an array of strings")
	}
	out := []string{}
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			break
		}
		s, ok := StringOf(v)
		if !ok {
			ip := p.Index(i)
			return TypeError(&ip, "a string")
		}
		out = append(out, s)
	}
	*dst = out
	return nil
}

// DecodeMetadata decodes an object of string values.
func DecodeMetadata(raw []byte, p Path, dst *map[string]string) error {
	if Absent(raw) {
		return nil
	}
	o, ok := ObjectOf(raw)
	if !ok {
		return TypeError(&p, "an object")
	}
	m := map[string]string{}
	var scratch []byte
	for {
		k, v, ok := o.Next()
		if !ok {
			break
		}
		name := string(Key(k, scratch))
		s, ok := StringOf(v)
		if !ok {
			kp := p.Key(name)
			return TypeError(&kp, "a string")
		}
		m[name] = s
	}
	*dst = m
	return nil
}

// MustObject returns a walker over the object at p.
func MustObject(raw []byte, p Path) (Object, error) {
	o, ok := ObjectOf(raw)
	if !ok {
		return o, TypeError(&p, "an object")
	}
	return o, nil
}

// MustArray returns a walker over the array at p.
func MustArray(raw []byte, p Path) (Array, error) {
	a, ok := ArrayOf(raw)
	if !ok {
		return a, TypeError(&p, "an array")
	}
	return a, nil
}

// Compact returns a compact copy of a raw JSON value, or nil if absent.
func Compact(raw []byte) []byte {
	if Absent(raw) {
		return nil
	}
	return AppendCompact(make([]byte, 0, len(raw)), raw)
}
