package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/metrics"
)

// A client naming a new model on every request cannot grow the LLM
// metrics past metrics.max_models_per_route values of the model label
// per route (plus "other"); the access log keeps the real model, cut.
func TestModelLabelIsBoundedPerRoute(t *testing.T) {
	const max, requests = 100, 200
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, fmt.Sprintf(`
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: %q } }
`, mock.URL()+"/v1/chat/completions"))

	// The last model is longer than the log keeps, with a two-byte rune
	// across the cut.
	long := strings.Repeat("m", 255) + "é" + strings.Repeat("z", 40)
	models := make([]string, requests)
	for i := range models {
		models[i] = fmt.Sprintf("client-model-%03d", i)
	}
	models[requests-1] = long
	for i, m := range models {
		stream := i%2 == 1
		resp, err := http.Post(tg.url("/v1/chat/completions"), "application/json", strings.NewReader(providertest.Chat(m, stream)))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}

	set := tg.Metrics()
	for name, c := range map[string]prometheus.Collector{
		"active":      set.LLMActive,
		"duration":    set.LLMDuration,
		"ttft":        set.LLMTimeToFirstToken,
		"prompt":      set.LLMPromptTokens,
		"completion":  set.LLMCompletionTokens,
		"http_active": set.HTTPActive,
	} {
		if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
			t.Errorf("%s: lint %v %v", name, err, problems)
		}
	}
	lines := tg.log.waitAccessLines(t, requests)
	mfs, err := tg.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "phasegate_llm_") {
			continue
		}
		values := map[string]bool{}
		labelled := false // the metric has a model label
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == metrics.LabelModel {
					values[l.GetValue()] = true
					labelled = true
				}
			}
		}
		if !labelled && mf.GetName() == "phasegate_llm_requests_total" {
			continue // by protocols, which take a fixed set of values
		}
		if len(values) > max+1 {
			t.Errorf("%s has %d model values, want at most %d", mf.GetName(), len(values), max+1)
		}
		if mf.GetName() != "phasegate_llm_time_to_first_token_seconds" && !values[metrics.ModelOther] {
			t.Errorf("%s has no %q series", mf.GetName(), metrics.ModelOther)
		}
	}
	other := testutil.ToFloat64(set.LLMPromptTokens.WithLabelValues("chat", "ai-proxy", metrics.ModelOther, metrics.RequestTypeChat)) +
		testutil.ToFloat64(set.LLMPromptTokens.WithLabelValues("chat", "ai-proxy", metrics.ModelOther, metrics.RequestTypeStream))
	if other == 0 {
		t.Error(`no prompt tokens counted under model="other"`)
	}

	for i, line := range lines[:requests-1] {
		if line["model"] != models[i] {
			t.Fatalf("access line %d: model %v, want the client's %q", i, line["model"], models[i])
		}
	}
	if got, want := lines[requests-1]["model"], strings.Repeat("m", 255); got != want {
		t.Errorf("long model logged as %q (%d bytes), want its first 255 bytes (the rune across 256 dropped)", got, len(fmt.Sprint(got)))
	}
	tg.waitGaugesZero(t, metrics.NameLLMActive, metrics.NameHTTPActive)
}

// metrics.max_models_per_route comes from the config, and a reload changes
// it for the models not yet admitted.
func TestMaxModelsPerRouteFromConfig(t *testing.T) {
	cfgText := func(n int) string {
		return fmt.Sprintf(`
metrics: { max_models_per_route: %d }
routes:
  - id: chat
    uri: /v1/chat/completions
    plugins: { ai-proxy: { provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1/chat/completions" } }
`, n)
	}
	tg := newTestGateway(t, cfgText(2))
	set := tg.Metrics()
	for _, c := range []struct{ model, want string }{{"a", "a"}, {"b", "b"}, {"c", metrics.ModelOther}} {
		if got := set.ModelLabel("chat", c.model); got != c.want {
			t.Errorf("max 2: ModelLabel(%q) = %q, want %q", c.model, got, c.want)
		}
	}
	cfg, err := LoadConfig("reload.yaml", []byte(cfgText(3)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := set.ModelLabel("chat", "c"); got != "c" {
		t.Errorf("after a reload to 3: ModelLabel(c) = %q", got)
	}
}
