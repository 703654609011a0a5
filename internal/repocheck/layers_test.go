package repocheck

import (
	"errors"
	"fmt"
	"go/build"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// modulePath is this module's import path (go.mod).
const modulePath = "github.com/phasegate/phasegate"

// layer is a named set of packages, relative to the module root: an exact
// path, or "dir/..." for dir and every package below it.
type layer struct {
	name string
	pkgs []string
}

// layers places every package of the module, bottom to top: a package
// imports only packages of its own layer or of the layers below it
// (docs/writing-plugins.md). A new package gets a row here.
var layers = []layer{
	{"leaves: import nothing of this module but each other", []string{
		"fsm/testhook", "golden", "sse", "yamlconf", "httpx", "metrics", "ratelimit", "tracing", "forward/wrr",
		"internal/logbuf", "internal/redistest", "internal/otlptest",
	}},
	{"state machine", []string{"fsm", "fsm/fsmtest"}},
	{"lifecycle: the plugin API", []string{"phases", "phases/phasetest"}},
	{"plugin SDK", []string{"pluginsdk"}},
	{"protocols: HTTP forwarding and LLM", []string{
		"forward", "llm", "llm/internal/wire", "llm/openai", "llm/anthropic", "llm/door", "llm/llmtest", "llm/provider",
	}},
	{"plugins", []string{"plugins/..."}},
	{"gateway", []string{"gateway", "gateway/internal/canonpath"}},
	// Test upstreams and helpers sit above the gateway so that it cannot
	// import them: tests, the binary and the benchmarks can.
	{"test upstreams and helpers", []string{"mockllm", "llm/provider/providertest", "internal/plugintest"}},
	{"commands", []string{"cmd/..."}},
	{"tools and examples", []string{"bench/...", "examples/...", "internal/mutate", "internal/repocheck"}},
}

// node is one package of the import graph: its non-test imports from this
// module, relative to the module root, and whether it is a command.
type node struct {
	imports []string
	main    bool
}

// matches reports whether pkg is named by the table entry pattern.
func matches(pattern, pkg string) bool {
	if dir, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == dir || strings.HasPrefix(pkg, dir+"/")
	}
	return pkg == pattern
}

// isInternal reports whether pkg is in the module's top-level internal/
// tree. A nested internal/ (llm/internal/wire) is private to its parent,
// which is where Go lets it be imported from.
func isInternal(pkg string) bool { return pkg == "internal" || strings.HasPrefix(pkg, "internal/") }

// checkLayers returns one line per violation of the table by graph: a
// package no entry places or two entries place, an entry that places
// nothing, an import of a higher layer, and a public (non-main, not
// internal) package importing the top-level internal/ tree.
func checkLayers(table []layer, graph map[string]node) []string {
	var problems []string
	level := map[string]int{}
	used := map[string]bool{}
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	for _, p := range pkgs {
		var placed []string
		for i, l := range table {
			for _, pat := range l.pkgs {
				if matches(pat, p) {
					placed = append(placed, fmt.Sprintf("%q (%s)", pat, l.name))
					level[p] = i
					used[pat] = true
				}
			}
		}
		switch len(placed) {
		case 0:
			problems = append(problems, fmt.Sprintf("%s: not in the layer table; give it a row in internal/repocheck/layers_test.go", p))
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("%s: placed more than once: %s", p, strings.Join(placed, ", ")))
		}
	}
	for _, l := range table {
		for _, pat := range l.pkgs {
			if !used[pat] {
				problems = append(problems, fmt.Sprintf("layer %q: %q names no package", l.name, pat))
			}
		}
	}
	for _, p := range pkgs {
		from, ok := level[p]
		if !ok {
			continue
		}
		for _, imp := range graph[p].imports {
			if to, ok := level[imp]; ok && to > from {
				problems = append(problems, fmt.Sprintf("%s (%s) imports %s (%s, a higher layer)", p, table[from].name, imp, table[to].name))
			}
			if isInternal(imp) && !isInternal(p) && !graph[p].main {
				problems = append(problems, fmt.Sprintf("%s is a public package and imports %s", p, imp))
			}
		}
	}
	return problems
}

// importGraph reads the module's packages with go/build (the default build
// context, test files excluded).
func importGraph(t *testing.T) map[string]node {
	t.Helper()
	graph := map[string]node{}
	for _, dir := range packages(t) {
		bp, err := build.ImportDir(dir, 0)
		if err != nil {
			var none *build.NoGoError
			if errors.As(err, &none) {
				continue
			}
			t.Fatal(err)
		}
		rel, err := filepath.Rel(moduleRoot, dir)
		if err != nil {
			t.Fatal(err)
		}
		n := node{main: bp.Name == "main"}
		for _, imp := range bp.Imports {
			if r, ok := strings.CutPrefix(imp, modulePath+"/"); ok {
				n.imports = append(n.imports, r)
			}
		}
		graph[filepath.ToSlash(rel)] = n
	}
	return graph
}

func TestLayers(t *testing.T) {
	graph := importGraph(t)
	if _, ok := graph["phases"]; !ok || len(graph) < 20 {
		t.Fatalf("the import graph looks wrong: %d packages", len(graph))
	}
	for _, p := range checkLayers(layers, graph) {
		t.Error(p)
	}
}

// The checker itself, on small graphs with one fault each.
func TestCheckLayersFindsEachFault(t *testing.T) {
	table := []layer{
		{"low", []string{"a", "internal/x"}},
		{"mid", []string{"lib", "lib/sub", "lib/internal/y"}},
		{"top", []string{"cmd/..."}},
	}
	clean := map[string]node{
		"a":              {},
		"internal/x":     {imports: []string{"a"}},
		"lib/internal/y": {imports: []string{"a"}},
		"lib":            {imports: []string{"a", "lib/internal/y"}},
		"lib/sub":        {imports: []string{"lib"}},
		"cmd/tool":       {imports: []string{"lib", "internal/x"}, main: true},
	}
	if p := checkLayers(table, clean); len(p) != 0 {
		t.Fatalf("a clean graph has problems: %q", p)
	}
	with := func(pkg string, n node) map[string]node {
		g := map[string]node{}
		for k, v := range clean {
			g[k] = v
		}
		g[pkg] = n
		return g
	}
	for _, tc := range []struct {
		name  string
		graph map[string]node
		want  string
	}{
		{"upward import", with("a", node{imports: []string{"lib/sub"}}), "a (low) imports lib/sub (mid, a higher layer)"},
		{"public imports internal", with("lib/sub", node{imports: []string{"internal/x"}}), "lib/sub is a public package and imports internal/x"},
		{"unplaced package", with("other", node{}), "other: not in the layer table"},
		{"entry naming nothing", func() map[string]node { g := with("a", node{}); delete(g, "internal/x"); return g }(), `layer "low": "internal/x" names no package`},
	} {
		p := checkLayers(table, tc.graph)
		if len(p) != 1 || !strings.HasPrefix(p[0], tc.want) {
			t.Errorf("%s: got %q, want one problem starting %q", tc.name, p, tc.want)
		}
	}
	twice := append([]layer{{"extra", []string{"lib/sub"}}}, table...)
	if p := checkLayers(twice, clean); len(p) != 1 || !strings.HasPrefix(p[0], "lib/sub: placed more than once") {
		t.Errorf("a package in two layers: %q", p)
	}
}

// goListDeps returns the module's packages among `go list -deps pattern`.
func goListDeps(t *testing.T, pattern string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pattern)
	cmd.Dir = moduleRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pattern, err)
	}
	var own []string
	for _, line := range strings.Fields(string(out)) {
		if r, ok := strings.CutPrefix(line, modulePath+"/"); ok {
			own = append(own, r)
		}
	}
	return own
}

// The issue's own wording of the layers, checked with go list: the plugin
// API depends on no internal/ package and no plugin; the gateway on no
// plugin and no mock upstream.
func TestGoListDeps(t *testing.T) {
	internal := func(p string) bool { return strings.Contains("/"+p+"/", "/internal/") }
	plugin := func(p string) bool { return matches("plugins/...", p) }
	for _, tc := range []struct {
		pattern string
		banned  func(string) bool
	}{
		{"./phases/...", func(p string) bool { return internal(p) || plugin(p) }},
		{"./gateway", func(p string) bool { return plugin(p) || p == "mockllm" }},
	} {
		deps := goListDeps(t, tc.pattern)
		if len(deps) == 0 {
			t.Fatalf("go list -deps %s names no package of the module", tc.pattern)
		}
		for _, d := range deps {
			if tc.banned(d) {
				t.Errorf("go list -deps %s names %s", tc.pattern, d)
			}
		}
	}
}
