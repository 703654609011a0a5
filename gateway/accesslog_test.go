package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/llm/provider/providertest"
	"github.com/phasegate/phasegate/mockllm"
	"github.com/phasegate/phasegate/plugins/aimoderation"
)

var contractFields = []string{
	"request_id", "route", "method", "path", "status", "duration_ms", "upstream_ms",
	"ttft_ms", "model", "instance", "prompt_tokens", "completion_tokens",
	"lifecycle", "cause", "exit_phase", "exit_plugin",
}

// One line per request with every field of docs/metrics.md's access log, and no credential
// anywhere in the log, whether the request passed key-auth or not.
func TestAccessLogFieldsAndNoCredentials(t *testing.T) {
	up := newUpstream(t)
	tg := newTestGateway(t, fmt.Sprintf(`
consumers:
  - { username: alice, key: sk-alice-secret-key }
routes:
  - id: keyed
    uri: /api/*
    plugins: { key-auth: { hide_credentials: true } }
    upstream: { nodes: { %q: 1 } }
`, up.node()))
	do := func(path string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", tg.url(path), nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp.Body)
		resp.Body.Close()
		return resp
	}
	ok := do("/api/ok", map[string]string{"apikey": "sk-alice-secret-key", "Authorization": "Bearer sk-upstream-token"})
	bad := do("/api/bad?apikey=sk-wrong-guess&x=1", map[string]string{"Cookie": "session=sk-cookie"})
	queryKey := do("/api/q?apikey=sk-alice-secret-key", nil)
	if ok.StatusCode != 200 || bad.StatusCode != 401 || queryKey.StatusCode != 200 {
		t.Fatalf("statuses %d %d %d", ok.StatusCode, bad.StatusCode, queryKey.StatusCode)
	}
	lines := tg.log.waitAccessLines(t, 3)
	for i, line := range lines {
		for _, f := range contractFields {
			if _, ok := line[f]; !ok {
				t.Errorf("line %d lacks %q: %v", i, f, line)
			}
		}
	}
	if lines[0]["consumer"] != "alice" || lines[0]["lifecycle"] != "access>upstream>header_filter>body_filter>log" || lines[0]["cause"] != "completed" {
		t.Errorf("line 0: %v", lines[0])
	}
	if lines[1]["exit_plugin"] != "key-auth" || lines[1]["exit_phase"] != "access" || lines[1]["path"] != "/api/bad" {
		t.Errorf("line 1: %v", lines[1])
	}
	if lines[0]["request_id"] != ok.Header.Get("X-Request-Id") {
		t.Errorf("request_id %v, response header %q", lines[0]["request_id"], ok.Header.Get("X-Request-Id"))
	}
	for _, secret := range []string{"sk-alice-secret-key", "sk-upstream-token", "sk-wrong-guess", "sk-cookie"} {
		if strings.Contains(tg.log.String(), secret) {
			t.Errorf("the log contains the credential %q:\n%s", secret, tg.log.String())
		}
	}
}

// ai-content-moderation's verdict reaches the access line as "moderation"
// through its LogFields: the gateway knows no plugin by name.
func TestAccessLogCarriesTheModerationVerdict(t *testing.T) {
	mock := providertest.StartMock(t)
	tg := newTestGateway(t, aiConfig(mock.URL(), failing(t)))
	for i, tc := range []struct {
		stream  bool
		content string
		status  int
		verdict any
	}{
		// A realtime check that passes gives no verdict (only final_packet
		// mode records "passed"): the line has no field.
		{false, "Gardening is calm and slow work.", 200, nil},
		{false, "Sure. First, kill the weeds at the root.", 400, aimoderation.VerdictRefused},
		{true, "Gardening is calm and slow work, and then you kill the aphids", 200, aimoderation.VerdictRefused},
	} {
		resp, body := chat(t, tg.url("/v1/chat/completions"), tc.stream, map[string]string{mockllm.HeaderContent: tc.content, mockllm.HeaderChunks: "4"})
		if resp.StatusCode != tc.status {
			t.Fatalf("%q: %d %s", tc.content, resp.StatusCode, body)
		}
		// Each line is awaited before the next request, so lines[i] is this one's.
		line := tg.log.waitAccessLines(t, i+1)[i]
		if line["moderation"] != tc.verdict {
			t.Errorf("%q: moderation %v, want %v: %v", tc.content, line["moderation"], tc.verdict, line)
		}
	}
}
