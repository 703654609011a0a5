package yamlconf

import (
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "alpha", "EMPTY": "", "N": "8080"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want string
		errs     []string
	}{
		{"plain", "plain", nil},
		{"${A}", "alpha", nil},
		{"x${A}y${N}z", "xalphay8080z", nil},
		{"${UNSET:-def}", "def", nil},
		{"${EMPTY:-def}", "def", nil},
		{"${A:-def}", "alpha", nil},
		{"${UNSET:-}", "", nil},
		{"${EMPTY}", "", nil},
		{"${UNSET:-a:-b}", "a:-b", nil},
		{"$${A}", "${A}", nil},
		{"$$${A}", "$${A}", nil}, // scanned left to right: "$" then "$${"
		{"$A $ $$ $5", "$A $ $$ $5", nil},
		{"${UNSET}", "", []string{"environment variable UNSET is not set"}},
		{"${1X}", "${1X}", []string{`invalid environment variable reference "${1X}"`}},
		{"${A-b}", "${A-b}", []string{`invalid environment variable reference "${A-b}"`}},
		{"${}", "${}", []string{`invalid environment variable reference "${}"`}},
		{"a${A", "a${A", []string{`unterminated "${A" (write $${ for a literal ${)`}},
		{"${A}${B}${C}", "alpha", []string{"environment variable B is not set", "environment variable C is not set"}},
		{"${A:-${B}}", "alpha}", nil}, // defaults are not nested
	}
	for _, tt := range tests {
		got, errs := expand(tt.in, lookup)
		if got != tt.want || !slices.Equal(errs, tt.errs) {
			t.Errorf("expand(%q) = %q %q, want %q %q", tt.in, got, errs, tt.want, tt.errs)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"endpoint", "timeout", "id", "uri", "shutdown_timeout", "nodes"}
	tests := map[string]string{
		"endpont":                "endpoint",
		"endpiont":               "endpoint", // transposition
		"Endpoint":               "endpoint",
		"shutdownTimeout":        "shutdown_timeout",
		"shutdown-timeout":       "shutdown_timeout",
		"url":                    "uri",
		"node":                   "nodes",
		"x":                      "",
		"ab":                     "",
		"completely":             "",
		strings.Repeat("e", 100): "",
	}
	for in, want := range tests {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParsePathRoundTrip(t *testing.T) {
	keys := []string{"a", "a.b", "", "x y", `q"u`, "[1]", "10.0.0.1:80", "ünï", "tab\there", "a]b"}
	for _, k := range keys {
		p := PathIndex(PathKey(PathKey("", "root"), k), 3) + ".z"
		segs, ok := parsePath(p)
		want := []segment{{key: "root"}, {key: k}, {index: 3, isIndex: true}, {key: "z"}}
		if !ok || !slices.Equal(segs, want) {
			t.Errorf("parsePath(%q) = %v %v, want %v", p, segs, ok, want)
		}
	}
}
