package providertest_test

import (
	"net/http"
	"testing"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/phases"
)

// Serve runs plugins behind a real socket and records each request's
// outcome. (Compiled, not run: it needs a test's *testing.T.)
func ExampleServe() {
	TestAIRoute := func(t *testing.T, plugins ...phases.Plugin) {
		g := providertest.Serve(t, phases.Options{Route: "chat"}, plugins...)
		resp := g.Post(t, providertest.Chat("gpt-4o-mini", false), nil)
		if o := g.Wait(t); resp.Status != http.StatusOK || o.LLM.Model != "gpt-4o-mini" {
			t.Fatalf("%d %+v", resp.Status, o)
		}
	}
	_ = TestAIRoute
}
