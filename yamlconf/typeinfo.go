package yamlconf

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode"
)

type fieldInfo struct {
	name     string
	index    []int
	required bool
}

type structInfo struct {
	fields []fieldInfo
	byName map[string]int
	names  []string   // field names in declaration order, for suggestions
	inline *fieldInfo // ",inline" map collecting unknown keys, if any
}

var infoCache sync.Map // reflect.Type → *structInfo

func typeInfo(t reflect.Type) *structInfo {
	if si, ok := infoCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]int{}}
	si.collect(t, nil, map[reflect.Type]bool{t: true})
	actual, _ := infoCache.LoadOrStore(t, si)
	return actual.(*structInfo)
}

// collect adds t's fields; fields of inlined structs come after t's own
// fields, so that outer fields shadow inner ones.
func (si *structInfo) collect(t reflect.Type, index []int, visiting map[reflect.Type]bool) {
	type inl struct {
		t     reflect.Type
		index []int
	}
	var inlined []inl
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(slices.Clone(index), i)
		if hasOpt(opts, "inline") {
			ft := f.Type
			switch {
			case ft.Kind() == reflect.Struct && (f.IsExported() || f.Anonymous):
				inlined = append(inlined, inl{ft, idx})
				continue
			case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct && f.IsExported():
				inlined = append(inlined, inl{ft.Elem(), idx})
				continue
			case ft.Kind() == reflect.Map && ft.Key().Kind() == reflect.String && f.IsExported():
				if si.inline == nil {
					si.inline = &fieldInfo{name: name, index: idx}
				}
				continue
			}
			// Not inlinable: treat as an ordinary field.
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		if _, dup := si.byName[name]; dup {
			continue
		}
		si.byName[name] = len(si.fields)
		si.fields = append(si.fields, fieldInfo{name: name, index: idx, required: hasOpt(f.Tag.Get("conf"), "required")})
		si.names = append(si.names, name)
	}
	for _, in := range inlined {
		if visiting[in.t] {
			continue
		}
		visiting[in.t] = true
		si.collect(in.t, in.index, visiting)
		delete(visiting, in.t)
	}
}

func hasOpt(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if strings.TrimSpace(o) == opt {
			return true
		}
	}
	return false
}

// fieldByIndex is reflect.Value.FieldByIndex that allocates nil embedded
// pointers on the way.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, false
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, v.CanSet()
}

// suggest returns the name closest to key if it is a plausible typo:
// equal up to case, '_' and '-', or within edit distance 2 (counting a
// transposition as one edit) without being a complete rewrite of key.
func suggest(key string, names []string) string {
	if len(key) > 64 {
		return ""
	}
	nk := normalize(key)
	for _, n := range names {
		if normalize(n) == nk {
			return n
		}
	}
	best, bestDist := "", 3
	kr := []rune(key)
	for _, n := range names {
		dist := editDistance(kr, []rune(n))
		if dist < bestDist && dist < len(kr) {
			best, bestDist = n, dist
		}
	}
	return best
}

func normalize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b []rune) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}
