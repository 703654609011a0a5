package yamlconf_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/phasegate/phasegate/yamlconf"
)

// FuzzDecode checks that no input makes Parse or decoding panic or hang,
// and that every problem of a parsed document has a position.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := splitGolden(data)
		f.Add(input)
	}
	env := func(name string) (string, bool) {
		switch name {
		case "SET":
			return "value", true
		case "NUM":
			return "42", true
		case "MAP":
			return "{a: 1}", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, probs := yamlconf.Parse("fuzz.yaml", data, env)
		checkProblems(t, doc, probs)
		if doc == nil {
			return
		}
		for _, target := range []string{"plugins", "any", "misc", "extensible"} {
			_, more := decodeTarget(doc, target)
			checkProblems(t, doc, more)
			_ = more.Error()
		}
		for _, path := range []string{"", "listen", "routes[0]", "routes[0].plugins.ai-proxy", `a["b.c"][1]`} {
			_ = doc.At(path)
			if p := doc.Problemf(path, "x"); p.Line < 1 {
				t.Errorf("Problemf(%q) without position: %v", path, p)
			}
		}
	})
}
