package yamlconf_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/phasegate/phasegate/yamlconf"
)

func noEnv(string) (string, bool) { return "", false }

func mustParse(t *testing.T, src string) *yamlconf.Doc {
	t.Helper()
	doc, probs := yamlconf.Parse("c.yaml", []byte(src), noEnv)
	if doc == nil || len(probs) > 0 {
		t.Fatalf("Parse: %v", probs)
	}
	return doc
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    yamlconf.Problem
		want string
	}{
		{yamlconf.Problem{File: "f.yaml", Line: 3, Col: 5, Path: "a.b", Msg: "bad"}, "f.yaml:3:5: a.b: bad"},
		{yamlconf.Problem{File: "f.yaml", Line: 3, Col: 5, Msg: "bad"}, "f.yaml:3:5: bad"},
		{yamlconf.Problem{File: "f.yaml", Path: "a", Msg: "bad"}, "f.yaml: a: bad"},
		{yamlconf.Problem{Line: 1, Col: 2, Msg: "bad"}, "1:2: bad"},
		{yamlconf.Problem{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestProblemsError(t *testing.T) {
	var ps yamlconf.Problems
	if ps.Err() != nil {
		t.Fatal("Err of empty Problems is not nil")
	}
	ps.Addf("b.yaml", 1, 1, "x", "late file")
	ps.Addf("a.yaml", 9, 1, "", "n=%d", 9)
	ps.Add(yamlconf.Problem{File: "a.yaml", Line: 2, Col: 7, Path: "z", Msg: "m"},
		yamlconf.Problem{File: "a.yaml", Line: 2, Col: 7, Path: "a", Msg: "m"})
	ps.Sort()
	want := "a.yaml:2:7: a: m\na.yaml:2:7: z: m\na.yaml:9:1: n=9\nb.yaml:1:1: x: late file"
	err := ps.Err()
	if err == nil || err.Error() != want {
		t.Fatalf("Error() =\n%v\nwant\n%s", err, want)
	}
	var got yamlconf.Problems
	if !errors.As(err, &got) || len(got) != 4 {
		t.Fatalf("errors.As(Problems) failed: %v", got)
	}
}

func TestPathHelpers(t *testing.T) {
	tests := []struct{ base, key, want string }{
		{"", "listen", "listen"},
		{"plugins", "ai-proxy", "plugins.ai-proxy"},
		{"plugins", "a.b", `plugins["a.b"]`},
		{"", "a.b", `["a.b"]`},
		{"n", "", `n[""]`},
		{"n", "x y", `n["x y"]`},
		{"n", "[0]", `n["[0]"]`},
		{"n", "10.0.0.1:80", `n["10.0.0.1:80"]`},
		{"n", "host:80", `n.host:80`},
	}
	for _, tt := range tests {
		if got := yamlconf.PathKey(tt.base, tt.key); got != tt.want {
			t.Errorf("PathKey(%q, %q) = %q, want %q", tt.base, tt.key, got, tt.want)
		}
	}
	if got := yamlconf.PathIndex("routes", 2); got != "routes[2]" {
		t.Errorf("PathIndex = %q", got)
	}
}

const atSrc = `listen: ":80"
routes:
  - id: a
    plugins:
      ai-proxy:
        endpoint: http://x
      "rate.limit": {count: 1}
    upstream:
      nodes:
        "10.0.0.1:80": 1
  - <<: &b {id: b}
    uri: /b
base: *b
`

func TestAt(t *testing.T) {
	doc := mustParse(t, atSrc)
	tests := []struct {
		path      string
		line, col int // 0: want nil
		value     string
	}{
		{"", 1, 1, ""},
		{"listen", 1, 9, ":80"},
		{"routes[0].id", 3, 9, "a"},
		{"routes[0].plugins.ai-proxy.endpoint", 6, 19, "http://x"},
		{`routes[0].plugins["rate.limit"].count`, 7, 29, "1"},
		{`routes[0].upstream.nodes["10.0.0.1:80"]`, 10, 24, "1"},
		{"routes[1].id", 11, 17, "b"},   // through a merge key
		{"base.id", 11, 17, "b"},        // through an alias
		{"routes[1].uri", 12, 10, "/b"}, //
		{"routes[2]", 0, 0, ""},
		{"routes.x", 0, 0, ""},
		{"listen.x", 0, 0, ""},
		{"nope", 0, 0, ""},
		{"routes[", 0, 0, ""},
		{"routes[-1]", 0, 0, ""},
		{`routes[0].plugins["rate.limit`, 0, 0, ""},
		{".listen", 0, 0, ""},
		{"routes..x", 0, 0, ""},
	}
	for _, tt := range tests {
		n := doc.At(tt.path)
		if tt.line == 0 {
			if n != nil {
				t.Errorf("At(%q) = node at %d:%d, want nil", tt.path, n.Line, n.Column)
			}
			continue
		}
		if n == nil {
			t.Errorf("At(%q) = nil", tt.path)
			continue
		}
		if n.Line != tt.line || n.Column != tt.col || n.Value != tt.value {
			t.Errorf("At(%q) = %d:%d %q, want %d:%d %q", tt.path, n.Line, n.Column, n.Value, tt.line, tt.col, tt.value)
		}
	}
	var nilDoc *yamlconf.Doc
	if nilDoc.At("x") != nil {
		t.Error("nil Doc At != nil")
	}
}

func TestProblemf(t *testing.T) {
	doc := mustParse(t, atSrc)
	tests := []struct{ path, want string }{
		{"listen", "c.yaml:1:9: listen: m 1"},
		{"routes[0].plugins.ai-proxy.model", "c.yaml:6:9: routes[0].plugins.ai-proxy.model: m 1"}, // missing: parent mapping
		{"routes[7].id", "c.yaml:3:3: routes[7].id: m 1"},                                         // missing: the list
		{"", "c.yaml:1:1: m 1"},
		{"routes[", "c.yaml:3:3: routes[: m 1"}, // invalid: the valid prefix
	}
	for _, tt := range tests {
		if got := doc.Problemf(tt.path, "m %d", 1).String(); got != tt.want {
			t.Errorf("Problemf(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestEnvNilUsesOS(t *testing.T) {
	t.Setenv("YAMLCONF_TEST_LISTEN", ":7070")
	var cfg GatewayConfig
	_, probs := yamlconf.Load("c.yaml", []byte("listen: ${YAMLCONF_TEST_LISTEN}\n"), nil, &cfg)
	if len(probs) > 0 || cfg.Listen != ":7070" {
		t.Fatalf("listen = %q, problems: %v", cfg.Listen, probs)
	}
}

func TestSyntaxErrorPositions(t *testing.T) {
	tests := []struct{ src, want string }{
		{"a: 1\nb: \"\x01\"\n", "c.yaml:2:5: syntax error: control characters are not allowed"},
		{"a: 1\nb: x\xff\n", "c.yaml:2:5: syntax error: invalid leading UTF-8 octet"},
		{"a: 1\n b: 2\n", "c.yaml:2:1: syntax error: mapping values are not allowed in this context"},
		{"a:\n  b: 1\n c: 2\n", "c.yaml:3:1: syntax error: did not find expected key"},
		{"a: [1,\n", "c.yaml:2:1: syntax error: did not find expected node content"},
		{"a: *x\nb: *nope\n", "c.yaml:1:4: syntax error: unknown anchor 'x' referenced"},
		{"---\na: 1\n---\n- b\n---\nc\n", "c.yaml:3:1: only one YAML document is allowed per file"},
	}
	for _, tt := range tests {
		_, probs := yamlconf.Parse("c.yaml", []byte(tt.src), noEnv)
		if got := probs.Error(); got != tt.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestDefaultsAndRawNodes(t *testing.T) {
	doc := mustParse(t, `listen: ":80"
routes:
  - id: a
    plugins:
      ai-proxy:
      cors: {origins: ["*"]}
`)
	cfg := GatewayConfig{Admin: AdminConfig{Listen: "127.0.0.1:9180"}, ShutdownTimeout: 10 * time.Second}
	if probs := doc.Decode(&cfg); len(probs) > 0 {
		t.Fatal(probs)
	}
	if cfg.Admin.Listen != "127.0.0.1:9180" || cfg.ShutdownTimeout != 10*time.Second {
		t.Errorf("defaults lost: %+v", cfg)
	}
	p := cfg.Routes[0].Plugins
	if n := p["ai-proxy"]; n == nil || n.Kind != yaml.ScalarNode || n.Tag != "!!null" || n.Line != 5 {
		t.Errorf("null plugin node = %#v", n)
	}
	if n := p["cors"]; n == nil || n.Kind != yaml.MappingNode || n.Line != 6 || n != doc.At("routes[0].plugins.cors") {
		t.Errorf("plugin node = %#v", n)
	}
	// A plugin config with defaults, decoded from the null node: an empty
	// mapping, so defaults stay and required fields are still required.
	ai := AIProxyConfig{Model: "default-model", Timeout: time.Minute}
	probs := doc.DecodeNode(p["ai-proxy"], "routes[0].plugins.ai-proxy", &ai)
	if want := "c.yaml:5:16: routes[0].plugins.ai-proxy.endpoint: is required"; probs.Error() != want {
		t.Errorf("DecodeNode(null) = %v, want %s", probs, want)
	}
	if ai.Model != "default-model" || ai.Timeout != time.Minute {
		t.Errorf("defaults lost: %+v", ai)
	}
}

func TestDecodeNodeEdgeCases(t *testing.T) {
	doc := mustParse(t, "listen: \":80\"\nadmin:\n  listen: x\n")
	var lc LimitCountConfig
	probs := doc.DecodeNode(nil, "admin.plugin", &lc)
	want := "c.yaml:3:3: admin.plugin.count: is required\nc.yaml:3:3: admin.plugin.time_window: is required"
	if probs.Error() != want {
		t.Errorf("DecodeNode(nil) =\n%v\nwant\n%s", probs, want)
	}
	var s []string
	if probs := doc.DecodeNode(nil, "x", &s); probs != nil {
		t.Errorf("DecodeNode(nil, slice) = %v", probs)
	}
	probs = doc.DecodeNode(doc.Root, "", lc)
	if len(probs) != 1 || !strings.Contains(probs[0].Msg, "need a non-nil pointer") || probs[0].Line != 1 {
		t.Errorf("DecodeNode(non-pointer) = %v", probs)
	}
	if probs := doc.Decode(nil); len(probs) != 1 {
		t.Errorf("Decode(nil) = %v", probs)
	}
	// A document node is unwrapped.
	var full yaml.Node
	if err := yaml.Unmarshal([]byte("count: 1\ntime_window: 1s\n"), &full); err != nil {
		t.Fatal(err)
	}
	lc = LimitCountConfig{}
	if probs := (&yamlconf.Doc{File: "h.yaml"}).DecodeNode(&full, "", &lc); len(probs) > 0 || lc.Count != 1 {
		t.Errorf("DecodeNode(document) = %v, %+v", probs, lc)
	}
	// A nil *Doc still decodes.
	var nilDoc *yamlconf.Doc
	if probs := nilDoc.DecodeNode(full.Content[0], "p", &lc); len(probs) > 0 {
		t.Errorf("nil Doc: %v", probs)
	}
	if probs := nilDoc.Decode(&lc); len(probs) != 2 {
		t.Errorf("nil Doc Decode = %v", probs)
	}
}

func TestConcurrentDecode(t *testing.T) {
	data := []byte(atSrc + "extra: {a: [1, 2]}\n")
	doc, probs := yamlconf.Parse("c.yaml", data, noEnv)
	if doc == nil {
		t.Fatal(probs)
	}
	var wg sync.WaitGroup
	results := make([]string, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var v any
			results[i] = doc.Decode(&v).Error()
			var cfg GatewayConfig
			results[i] += doc.Decode(&cfg).Error()
		}()
	}
	wg.Wait()
	for _, r := range results[1:] {
		if r != results[0] {
			t.Fatalf("concurrent decodes differ:\n%s\n%s", r, results[0])
		}
	}
}

type shadow struct {
	Name   string `yaml:"name"`
	Inner  `yaml:",inline"`
	*Ptr   `yaml:",inline"`
	hidden `yaml:",inline"` // unexported, but its exported fields are settable
}

type hidden struct {
	H string `yaml:"h"`
}

type Inner struct {
	Name  string `yaml:"inner_name"`
	Other string `yaml:"name"` // shadowed by shadow.Name
}

type Ptr struct {
	P int `yaml:"p"`
}

func TestInline(t *testing.T) {
	doc := mustParse(t, "name: n\ninner_name: i\np: 3\nh: x\n")
	var s shadow
	if probs := doc.Decode(&s); len(probs) > 0 {
		t.Fatal(probs)
	}
	if s.Name != "n" || s.Inner.Name != "i" || s.Other != "" || s.Ptr == nil || s.P != 3 || s.H != "x" {
		t.Errorf("got %+v", s)
	}
	var s2 shadow
	if probs := mustParse(t, "name: n\n").Decode(&s2); len(probs) > 0 || s2.Ptr != nil {
		t.Errorf("inline pointer allocated without its fields: %+v %v", s2, probs)
	}
}

// Rec refers to itself, also through an inline embedded pointer.
type Rec struct {
	Name     string `yaml:"name"`
	Children []Rec  `yaml:"children"`
	Next     *Rec   `yaml:"next"`
	*Rec     `yaml:",inline"`
}

func TestRecursiveType(t *testing.T) {
	doc := mustParse(t, "name: a\nchildren: [{name: b, children: [{nme: c}]}]\nnext: {next: {name: d}}\n")
	var r Rec
	probs := doc.Decode(&r)
	if probs.Error() != `c.yaml:2:34: children[0].children[0].nme: unknown field "nme" (did you mean "name"?)` {
		t.Errorf("problems: %v", probs)
	}
	if r.Next.Next.Name != "d" || r.Children[0].Name != "b" {
		t.Errorf("got %+v", r)
	}
}

func TestDeepNestingManyProblems(t *testing.T) {
	const depth, keys = 5000, 300
	var b strings.Builder
	b.WriteString("listen: x\nextra: ")
	b.WriteString(strings.Repeat("[", depth))
	b.WriteString("{")
	for i := range keys {
		fmt.Fprintf(&b, "[k%d]: v, ", i)
	}
	b.WriteString("}")
	b.WriteString(strings.Repeat("]", depth))
	b.WriteString("\n")
	start := time.Now()
	var cfg GatewayConfig
	_, probs := yamlconf.Load("c.yaml", []byte(b.String()), noEnv, &cfg)
	if len(probs) != keys {
		t.Fatalf("got %d problems, want %d: %.300v", len(probs), keys, probs)
	}
	if want := "extra" + strings.Repeat("[0]", depth) + ": mapping key must be a string, got a list"; !strings.HasSuffix(probs[0].String(), want) {
		t.Errorf("problem = %.200s", probs[0])
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}
