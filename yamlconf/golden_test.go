package yamlconf_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/phasegate/phasegate/golden"
	"github.com/phasegate/phasegate/yamlconf"
)

var update = golden.Flag()

// Golden files (testdata/*.txt) hold one case each: the YAML input, a line
// "----", and the expected output. Directives are YAML comments in the
// input, so they do not disturb parsing:
//
//	# target: gateway | plugins | any | misc | unsupported | extensible
//	# env: NAME=value        (repeatable; the only variables that are set)
//	# file: name.yaml        (file name in problems; default config.yaml)
//	# dump                   (append the decoded value, marshaled as YAML)
//
// The output is the sorted problem lines, or "(no problems)", followed by
// "== value ==" and the value when dumping.
const goldenSep = "----\n"

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := splitGolden(data)
			if !ok && !*update {
				t.Fatalf("%s: no %q separator line", file, strings.TrimSpace(goldenSep))
			}
			got := runCase(t, input)
			if *update {
				var b bytes.Buffer
				b.Write(input)
				b.WriteString(goldenSep)
				b.WriteString(got)
				if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s: output mismatch (run with -update to accept)\n--- got ---\n%s--- want ---\n%s", file, got, want)
			}
		})
	}
}

// splitGolden splits a golden file at its first separator line.
func splitGolden(data []byte) (input []byte, want string, ok bool) {
	if bytes.HasPrefix(data, []byte(goldenSep)) {
		return nil, string(data[len(goldenSep):]), true
	}
	i := bytes.Index(data, []byte("\n"+goldenSep))
	if i < 0 {
		return data, "", false
	}
	return data[:i+1], string(data[i+1+len(goldenSep):]), true
}

var directiveRE = regexp.MustCompile(`(?m)^#\s*(target|env|file|dump)\b:?[ \t]*(.*)$`)

type goldenCase struct {
	target string
	file   string
	env    map[string]string
	dump   bool
}

func directives(input []byte) goldenCase {
	c := goldenCase{target: "gateway", file: "config.yaml", env: map[string]string{}}
	for _, m := range directiveRE.FindAllStringSubmatch(string(input), -1) {
		arg := strings.TrimSpace(m[2])
		switch m[1] {
		case "target":
			c.target = arg
		case "file":
			c.file = arg
		case "dump":
			c.dump = true
		case "env":
			k, v, _ := strings.Cut(arg, "=")
			c.env[k] = v
		}
	}
	return c
}

// decodeTarget decodes doc into the Go value named by target. It is shared
// with the fuzz test.
func decodeTarget(doc *yamlconf.Doc, target string) (any, yamlconf.Problems) {
	switch target {
	case "gateway":
		var cfg GatewayConfig
		return &cfg, doc.Decode(&cfg)
	case "plugins":
		var cfg GatewayConfig
		probs := doc.Decode(&cfg)
		plugins, more := decodePlugins(doc, &cfg)
		probs = append(probs, more...)
		probs.Sort()
		return plugins, probs
	case "any":
		var v any
		return &v, doc.Decode(&v)
	case "misc":
		var m Misc
		return &m, doc.Decode(&m)
	case "unsupported":
		var u Unsupported
		return nil, doc.Decode(&u)
	case "extensible":
		var e Extensible
		return &e, doc.Decode(&e)
	}
	panic("unknown target " + target)
}

func runCase(t *testing.T, input []byte) string {
	c := directives(input)
	env := func(name string) (string, bool) {
		v, ok := c.env[name]
		return v, ok
	}
	doc, probs := yamlconf.Parse(c.file, input, env)
	var val any
	if doc != nil {
		var more yamlconf.Problems
		val, more = decodeTarget(doc, c.target)
		probs = append(probs, more...)
	}
	probs.Sort()
	checkProblems(t, doc, probs)

	var b strings.Builder
	for _, p := range probs {
		b.WriteString(p.String())
		b.WriteByte('\n')
	}
	if len(probs) == 0 {
		b.WriteString("(no problems)\n")
	}
	if c.dump {
		b.WriteString("== value ==\n")
		out, err := yaml.Marshal(val)
		if err != nil {
			fmt.Fprintf(&b, "marshal error: %v\n", err)
		}
		b.Write(out)
	}
	return b.String()
}

// checkProblems checks invariants that hold for every input.
func checkProblems(t testing.TB, doc *yamlconf.Doc, probs yamlconf.Problems) {
	t.Helper()
	for i, p := range probs {
		if p.Line < 1 || p.Col < 1 {
			t.Errorf("problem without position: %#v", p)
		}
		if p.Msg == "" {
			t.Errorf("problem without message: %#v", p)
		}
		if i > 0 && less(p, probs[i-1]) {
			t.Errorf("problems not sorted: %q before %q", probs[i-1], p)
		}
	}
	if doc == nil && len(probs) == 0 {
		t.Errorf("nil Doc without problems")
	}
}

func less(a, b yamlconf.Problem) bool {
	if a.Line != b.Line {
		return a.Line < b.Line
	}
	if a.Col != b.Col {
		return a.Col < b.Col
	}
	return a.Path < b.Path
}
