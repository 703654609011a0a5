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
func TypeError(p Path, what string) error {
	return llm.FieldError(p.String(), "must be "+what)
}

// DecodeEnum decodes a string member that names one of a few values (a
// type, a role) without copying it: callers switch on it.
func DecodeEnum(raw []byte, p Path) ([]byte, error) {
	if Absent(raw) {
		return nil, nil
	}
	s, ok := Str(raw, nil)
	if !ok {
		return nil, TypeError(p, "a string")
	}
	return s, nil
}

// DecodeString decodes a string member.
func DecodeString(raw []byte, p Path, dst *string) error {
	if Absent(raw) {
		return nil
	}
	s, ok := StringOf(raw)
	if !ok {
		return TypeError(p, "a string")
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
		return TypeError(p, "a boolean")
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
		return TypeError(p, "a non-negative integer")
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
		return TypeError(p, "a number")
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
			return TypeError(p, "a string or an array of strings")
		}
		return TypeError(p, "an array of strings")
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
			return TypeError(ip, "a string")
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
		return TypeError(p, "an object")
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
			return TypeError(kp, "a string")
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
		return o, TypeError(p, "an object")
	}
	return o, nil
}

// MustArray returns a walker over the array at p.
func MustArray(raw []byte, p Path) (Array, error) {
	a, ok := ArrayOf(raw)
	if !ok {
		return a, TypeError(p, "an array")
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

// A Field decodes one top-level member of a body into a T, given the
// member's raw value (nil when absent) and path.
type Field[T any] struct {
	Name   string
	Decode func(raw []byte, p Path, v *T) error
}

// A RequestField decodes one member of a request body.
type RequestField = Field[llm.Request]

// DecodeObject decodes body into v with fields: each member named by a
// field (the last of duplicates winning), in the order of fields. Members
// no field names are ignored.
func DecodeObject[T any](body []byte, fields []Field[T], v *T) error {
	var buf [24]string
	names := buf[:0]
	for i := range fields {
		names = append(names, fields[i].Name)
	}
	raws := make([][]byte, len(fields))
	if err := Top(body, names, raws); err != nil {
		return BodyError(err)
	}
	root := Root
	for i := range fields {
		if err := fields[i].Decode(raws[i], root.Key(fields[i].Name), v); err != nil {
			return err
		}
	}
	return nil
}

// DecodeRequest decodes a request body with fields.
func DecodeRequest(body []byte, fields []RequestField) (*llm.Request, error) {
	r := &llm.Request{}
	if err := DecodeObject(body, fields, r); err != nil {
		return nil, err
	}
	return r, nil
}

// The members the protocols share under one name.
var (
	FieldModel       = RequestField{"model", func(v []byte, p Path, r *llm.Request) error { return DecodeString(v, p, &r.Model) }}
	FieldTemperature = RequestField{"temperature", func(v []byte, p Path, r *llm.Request) error {
		return DecodeFloat(v, p, &r.Temperature)
	}}
	FieldTopP     = RequestField{"top_p", func(v []byte, p Path, r *llm.Request) error { return DecodeFloat(v, p, &r.TopP) }}
	FieldStream   = RequestField{"stream", func(v []byte, p Path, r *llm.Request) error { return DecodeBool(v, p, &r.Stream) }}
	FieldUser     = RequestField{"user", func(v []byte, p Path, r *llm.Request) error { return DecodeString(v, p, &r.User) }}
	FieldMetadata = RequestField{"metadata", func(v []byte, p Path, r *llm.Request) error {
		return DecodeMetadata(v, p, &r.Metadata)
	}}
	FieldParallelToolCalls = RequestField{"parallel_tool_calls", func(v []byte, p Path, r *llm.Request) error {
		return DecodeBoolPtr(v, p, &r.ParallelToolCalls)
	}}
)

// maxMembers is the most members EachObject and Content collect of one
// object.
const maxMembers = 12

// EachObject calls f for each element of the array raw (nothing when it is
// absent), which must be objects, with the members named by names, the
// element's index and its path. It stops at f's first error.
func EachObject(raw []byte, p Path, names []string, f func(i int, members [][]byte, p Path) error) error {
	if Absent(raw) {
		return nil
	}
	a, err := MustArray(raw, p)
	if err != nil {
		return err
	}
	var buf [maxMembers][]byte
	for i := 0; ; i++ {
		v, ok := a.Next()
		if !ok {
			return nil
		}
		ip := p.Index(i)
		o, err := MustObject(v, ip)
		if err != nil {
			return err
		}
		members := buf[:len(names)]
		clear(members)
		Collect(&o, names, members)
		if err := f(i, members, ip); err != nil {
			return err
		}
	}
}

// Content decodes a message's content: a string is one text part; each
// object of an array becomes the part that part makes of the members
// named by names.
func Content(raw []byte, p Path, names []string, part func(members [][]byte, p Path) (llm.Part, error)) ([]llm.Part, error) {
	if Absent(raw) {
		return nil, nil
	}
	if KindOf(raw) == String {
		s, _ := StringOf(raw)
		return []llm.Part{{Kind: llm.PartText, Text: s}}, nil
	}
	if KindOf(raw) != Arr {
		return nil, TypeError(p, "a string or an array of content parts")
	}
	parts := []llm.Part{}
	err := EachObject(raw, p, names, func(_ int, members [][]byte, pp Path) error {
		pt, err := part(members, pp)
		parts = append(parts, pt)
		return err
	})
	if err != nil {
		return nil, err
	}
	return parts, nil
}

// DecodeTools decodes an array of tool definitions into r.Tools. A tool of
// type functionType, or of no type, is a function tool: "name",
// "description" and the JSON Schema of its arguments under schemaKey, in
// the tool's object or, when nested is not empty, in its member nested
// (Chat's "function"). A tool of another type is one built into a
// provider, kept by its type and name.
func DecodeTools(raw []byte, p Path, r *llm.Request, functionType, nested, schemaKey string) error {
	if Absent(raw) {
		return nil
	}
	r.Tools = []llm.Tool{}
	names := []string{"type", "name", "description", schemaKey}
	if nested != "" {
		names = []string{"type", nested}
	}
	return EachObject(raw, p, names, func(_ int, g [][]byte, tp Path) error {
		var t llm.Tool
		if err := DecodeString(g[0], tp.Key("type"), &t.Type); err != nil {
			return err
		}
		if t.Type == functionType {
			t.Type = ""
		}
		// A built-in tool keeps its name, when it has one where a
		// function tool has it.
		if t.Type == "" || nested == "" {
			fp, members := tp, g[1:]
			if nested != "" {
				fp = tp.Key(nested)
				o, err := MustObject(g[1], fp)
				if err != nil {
					return err
				}
				members = make([][]byte, 3)
				Collect(&o, []string{"name", "description", schemaKey}, members)
			}
			if err := DecodeString(members[0], fp.Key("name"), &t.Name); err != nil {
				return err
			}
			if err := DecodeString(members[1], fp.Key("description"), &t.Description); err != nil {
				return err
			}
			if t.Type == "" && !Absent(members[2]) {
				if _, err := MustObject(members[2], fp.Key(schemaKey)); err != nil {
					return err
				}
				t.Parameters = Compact(members[2])
			}
		}
		r.Tools = append(r.Tools, t)
		return nil
	})
}

// DecodeText decodes the text of a text part, which must be a string.
func DecodeText(raw []byte, p Path) (string, error) {
	s, ok := StringOf(raw)
	if !ok {
		return "", TypeError(p, "a string")
	}
	return s, nil
}

// DecodeReplyHead decodes the members that head a reply, its "id",
// "model" and creation time (nil for protocols without one), into r.
func DecodeReplyHead(id, model, created []byte, r *llm.Response) error {
	root := Root
	if err := DecodeString(id, root.Key("id"), &r.ID); err != nil {
		return err
	}
	r.Created, _ = Int(created)
	return DecodeString(model, root.Key("model"), &r.Model)
}

// ReplyModel is the model a reply names: its own, else the one asked for.
func ReplyModel(model string, req *llm.Request) string {
	if model == "" && req != nil {
		return req.Model
	}
	return model
}

// Member returns the raw member name of the object at raw, and its path;
// nil when raw is absent. raw must be an object.
func Member(raw []byte, p Path, name string) ([]byte, Path, error) {
	if Absent(raw) {
		return nil, p, nil
	}
	o, err := MustObject(raw, p)
	if err != nil {
		return nil, p, err
	}
	var g [1][]byte
	Collect(&o, []string{name}, g[:])
	return g[0], p.Key(name), nil
}

// FunctionTools refuses tools built into a provider, which cannot be sent
// to protocol target: it returns the 400 for the first, or nil.
func FunctionTools(tools []llm.Tool, target llm.Protocol) error {
	for i := range tools {
		if t := tools[i].Type; t != "" {
			return llm.FieldError(IndexPath("tools", i), "the tool type "+t+" cannot be sent to "+string(target))
		}
	}
	return nil
}
