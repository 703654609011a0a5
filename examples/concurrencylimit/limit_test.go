package concurrencylimit

import (
	"context"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

// The harness runs the limit through random paths — other plugins exiting
// or panicking in any phase, upstream failures, clients leaving at any
// point — and checks the lifecycle's rules after each, including that every
// gauge in env.Registry is back to 0.
func TestPropertyLimitReleasesEverySlot(t *testing.T) {
	var last *Limit
	phasetest.Check(t, phasetest.Config{
		Plugins: func(env *phasetest.Env) []phases.Plugin {
			l, err := New(Config{Max: 2}, "test", env.Registry)
			if err != nil {
				t.Fatal(err)
			}
			last = l
			return []phases.Plugin{l}
		},
		// Our own invariant on top of the harness's: no slot is kept.
		Check: func(t phasetest.TB, r *phasetest.Result) {
			if n := last.InUse(); n != 0 {
				t.Fatalf("%d slots still taken after the request", n)
			}
		},
	})
}

func TestValidate(t *testing.T) {
	if errs := (&Config{Max: 0}).Validate(); len(errs) != 1 || errs[0].Field != "max" {
		t.Fatalf("Validate(max: 0) = %v", errs)
	}
	if _, err := New(Config{Max: 1}, "r", prometheus.NewRegistry()); err != nil {
		t.Fatal(err)
	}
}

// inner is an upstream that, while the outer request holds its slot, sends
// a second request through the same chain.
type inner struct {
	chain  **phases.Chain
	status int
}

func (u *inner) Name() string { return "inner" }
func (u *inner) Upstream(ctx context.Context, r *phases.Request) (*phases.Response, error) {
	if r.Header.Get("X-Nested") == "" {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Nested", "1")
		(*u.chain).ServeHTTP(rec, req.WithContext(ctx))
		u.status = rec.Code
	}
	return &phases.Response{Status: 200, Body: phases.BytesBody([]byte("ok"))}, nil
}

func TestFullLimitRefusesWith429(t *testing.T) {
	l, err := New(Config{Max: 1}, "r", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var chain *phases.Chain
	up := &inner{chain: &chain}
	chain, err = phases.NewChain(phases.Options{}, l, up)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	chain.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 || up.status != 429 || l.InUse() != 0 {
		t.Fatalf("outer %d, nested %d, in use %d", rec.Code, up.status, l.InUse())
	}
}

// docs/writing-plugins.md shows this package's files verbatim; they must
// not drift apart.
func TestDocsShowThisCode(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "writing-plugins.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"limit.go", "limit_test.go"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		begin, end := "<!-- file:"+file+":begin -->\n```go\n", "```\n<!-- file:"+file+":end -->"
		i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
		if i < 0 || j < i {
			t.Fatalf("docs/writing-plugins.md lacks the %s markers", file)
		}
		if got := string(doc[i+len(begin) : j]); got != string(src) {
			if *update {
				doc = append(append(append([]byte(nil), doc[:i+len(begin)]...), src...), doc[j:]...)
				continue
			}
			t.Errorf("docs/writing-plugins.md shows a stale %s (go test ./examples/... -update copies it)", file)
		}
	}
	if *update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "writing-plugins.md"), doc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var update = flag.Bool("update", false, "copy this package's files into docs/writing-plugins.md")
