package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

var validityCases = []string{
	``, ` `, `{}`, `[]`, `null`, `true`, `false`, `nul`, `truex`, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e`, `1e+`,
	`1E-7`, `-12.5e+3`, `""`, `"a"`, `"\"`, `"\u12"`, `"\u12G4"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\x"`,
	"\"\x01\"", "\"\xff\"", `"\/\b\f\n\r\t\\"`, `{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{,}`, `[1,]`,
	`[1 2]`, `[,1]`, `{"a":[1,{"b":null}],"c":"d"}`, ` {"a" : [ 1 , 2 ] } `, `{"a":1}x`, `{"a":1}}`,
	`{1:2}`, `[[[[]]]]`, `{"a":{"b":{"c":{}}}}`, "\t\n\r{}\t\n\r", "\v{}", `{"a"}`, `{"a":}`, `[`, `{`,
}

func TestValidAgreesWithEncodingJSON(t *testing.T) {
	deep := []string{
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
		strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
		strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth),
		strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1),
	}
	for _, in := range append(append([]string{}, validityCases...), deep...) {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("Valid(%.40q) = %v, encoding/json says %v", in, got, want)
		}
		o, ok := ParseObject([]byte(in))
		if !ok {
			continue
		}
		for {
			if _, _, ok := o.Next(); !ok {
				break
			}
		}
		if got, want := o.Err() == nil, json.Valid([]byte(in)); got != want {
			t.Errorf("walking %.40q: err %v, encoding/json valid %v", in, o.Err(), want)
		}
	}
}

func TestObjectLastDuplicateWinsAndKeysAreExact(t *testing.T) {
	o, ok := ParseObject([]byte(`{"model":"a","Model":"b","mod\u0065l":"c"}`))
	if !ok {
		t.Fatal("not an object")
	}
	var model []byte
	for {
		k, v, ok := o.Next()
		if !ok {
			break
		}
		if KeyIs(k, "model") {
			model = v
		}
	}
	if o.Err() != nil || string(model) != `"c"` {
		t.Fatalf("model = %s, err %v; want \"c\"", model, o.Err())
	}
}

func TestIntAndFloat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"12", 12, true}, {"-3", -3, true}, {"2.0", 2, true}, {"1e3", 1000, true}, {"2.5", 0, false},
		{`"2"`, 0, false}, {"9223372036854775807", math.MaxInt64, true}, {"1e30", 0, false}, {"", 0, false},
	} {
		if got, ok := Int([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("Int(%s) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if f, ok := Float([]byte("0.25")); !ok || f != 0.25 {
		t.Errorf("Float(0.25) = %v, %v", f, ok)
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.7, 1e-7, 1.5e-9, 123456789, 1e21, 1e20, -2.5e-300, math.SmallestNonzeroFloat64} {
		want, _ := json.Marshal(f)
		if got := AppendFloat(nil, f); !bytes.Equal(got, want) {
			t.Errorf("AppendFloat(%v) = %s, encoding/json writes %s", f, got, want)
		}
	}
	if got := string(AppendFloat(nil, math.NaN())); got != "null" {
		t.Errorf("NaN = %s", got)
	}
}

func TestAppendCompact(t *testing.T) {
	in := []byte(" { \"a b\" : [ 1 , \"x \\\" y\" ] ,\n\t\"c\":{} } ")
	if got := string(AppendCompact(nil, in)); got != `{"a b":[1,"x \" y"],"c":{}}` {
		t.Errorf("AppendCompact = %s", got)
	}
}

func TestAppendStringAllocatesNothing(t *testing.T) {
	buf := make([]byte, 0, 256)
	s := "héllo \"world\"\n\u2028 \xff"
	if n := testing.AllocsPerRun(100, func() { buf = AppendString(buf[:0], s) }); n != 0 {
		t.Errorf("AppendString allocates %v times", n)
	}
	b := []byte(s)
	if n := testing.AllocsPerRun(100, func() { buf = AppendBytes(buf[:0], b) }); n != 0 {
		t.Errorf("AppendBytes allocates %v times", n)
	}
}

// toAny reads a raw value as encoding/json would into an any, walking
// nested values as the codecs do.
func toAny(t *testing.T, raw []byte) any {
	switch KindOf(raw) {
	case Obj:
		m := map[string]any{}
		o, _ := ObjectOf(raw)
		for {
			k, v, ok := o.Next()
			if !ok {
				break
			}
			m[string(Key(k, nil))] = toAny(t, v)
		}
		if o.Err() != nil {
			t.Fatalf("nested object %q: %v", raw, o.Err())
		}
		return m
	case Arr:
		l := []any{}
		a, _ := ArrayOf(raw)
		for {
			v, ok := a.Next()
			if !ok {
				break
			}
			l = append(l, toAny(t, v))
		}
		if a.Err() != nil {
			t.Fatalf("nested array %q: %v", raw, a.Err())
		}
		return l
	case String:
		s, _ := StringOf(raw)
		return s
	case Number:
		return json.Number(raw)
	case Bool:
		v, _ := BoolOf(raw)
		return v
	}
	return nil
}

func FuzzScanner(f *testing.F) {
	for _, in := range validityCases {
		f.Add([]byte(in))
	}
	f.Add([]byte(`"\ud83d\u0041 \udc00 caf\u00e9"`))
	f.Add([]byte(`{"a":{"b":["x\\\"y",{"c":"]}\\"}],"d":[[],{}]},"a":[1,"\\"]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		valid := Valid(in)
		if want := json.Valid(in); valid != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", in, valid, want)
		}
		if !valid {
			return
		}
		raw := bytes.TrimSpace(in)
		switch KindOf(raw) {
		case String:
			var want string
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			got, ok := Str(raw, nil)
			if !ok || string(got) != want {
				t.Fatalf("Str(%q) = %q, %v; want %q", raw, got, ok, want)
			}
			// Writing what was read and reading it back gives the same text.
			var back string
			if err := json.Unmarshal(AppendBytes(nil, got), &back); err != nil || back != want {
				t.Fatalf("AppendBytes(%q) reads back as %q, %v", got, back, err)
			}
		case Obj:
			var want map[string]json.RawMessage
			if err := json.Unmarshal(in, &want); err != nil {
				t.Fatal(err)
			}
			got := map[string][]byte{}
			o, _ := ParseObject(in)
			for {
				k, v, ok := o.Next()
				if !ok {
					break
				}
				got[string(Key(k, nil))] = v
			}
			if o.Err() != nil || len(got) != len(want) {
				t.Fatalf("walking %q: %d members (err %v), encoding/json finds %d", in, len(got), o.Err(), len(want))
			}
			for k, v := range want {
				if !bytes.Equal(got[k], bytes.TrimSpace(v)) {
					t.Fatalf("member %q = %q, encoding/json reads %q", k, got[k], v)
				}
			}
		}
		// Walking every nested value reads what encoding/json reads.
		var want any
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.UseNumber()
		if err := dec.Decode(&want); err != nil {
			t.Fatal(err)
		}
		if got := toAny(t, raw); !reflect.DeepEqual(got, want) {
			t.Fatalf("walking %q gives %#v, encoding/json %#v", in, got, want)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, in); err != nil {
			t.Fatal(err)
		}
		if got := AppendCompact(nil, raw); !bytes.Equal(got, compact.Bytes()) {
			t.Fatalf("AppendCompact(%q) = %q, encoding/json writes %q", raw, got, compact.Bytes())
		}
	})
}
