package tokencount

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docs/writing-plugins.md walks through this module with excerpts marked
// <!-- excerpt:FILE -->; each must appear in FILE as it is.
func TestDocsExcerpts(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "writing-plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	excerpts := regexp.MustCompile("(?s)<!-- excerpt:([^ ]+) -->\n```go\n(.*?)```\n").FindAllSubmatch(doc, -1)
	if len(excerpts) < 4 {
		t.Fatalf("docs/writing-plugins.md has %d excerpts of this module", len(excerpts))
	}
	for _, m := range excerpts {
		src, err := os.ReadFile(string(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), string(m[2])) {
			t.Errorf("docs/writing-plugins.md shows an excerpt of %s that the file does not hold:\n%s", m[1], m[2])
		}
	}
}
