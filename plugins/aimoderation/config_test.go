package aimoderation_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/yamlconf"
)

// TestDecodeYAML decodes configs as the gateway does: into the value
// Spec.Config returns, strictly, then Validate.
func TestDecodeYAML(t *testing.T) {
	env := func(name string) (string, bool) { return "sk-test", name == "OPENAI_API_KEY" }
	data := []byte(`deny_patterns: ["(?i)\\bkill\\b"]
moderation:
  endpoint: http://127.0.0.1:9082/v1/moderations
  auth: { header: { Authorization: "Bearer ${OPENAI_API_KEY}" } }
  fail_mode: error
check_request: true
check_response: true
request_roles: [user, system]
stream_check_mode: final_packet
deny_code: 451
deny_message: "rejected by content policy"
`)
	cfg := aimoderation.Spec.Config().(*aimoderation.Config)
	if _, probs := yamlconf.Load("route.yaml", data, env, cfg); len(probs) > 0 {
		t.Fatal(probs)
	}
	want := aimoderation.DefaultConfig()
	want.DenyPatterns = []string{`(?i)\bkill\b`}
	want.Moderation = aimoderation.ModerationConfig{
		Endpoint: "http://127.0.0.1:9082/v1/moderations",
		Auth:     aimoderation.Auth{Header: map[string]string{"Authorization": "Bearer sk-test"}},
		Timeout:  5 * time.Second,
		FailMode: "error",
	}
	want.CheckResponse = true
	want.RequestRoles = []string{"user", "system"}
	want.StreamCheckMode = "final_packet"
	want.DenyCode = 451
	want.DenyMessage = "rejected by content policy"
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("decoded\n%#v\nwant\n%#v", *cfg, want)
	}

	bad := []byte(`deny_patterns: ["ok", "(?i)\\bkill("]
moderation: { timeout: 0s, fail_mode: retry }
stream_check_mode: batch
stream_check_cache_size: -1
deny_code: 700
denycode: 400
`)
	cfg = aimoderation.Spec.Config().(*aimoderation.Config)
	_, probs := yamlconf.Load("route.yaml", bad, env, cfg)
	got := probs.Error()
	wantErr := "route.yaml:1:23: deny_patterns[1]: invalid RE2: error parsing regexp: missing closing ): `(?i)\\bkill(`\n" +
		"route.yaml:2:24: moderation.timeout: must be positive, got 0s\n" +
		"route.yaml:2:39: moderation.fail_mode: must be \"skip\" or \"error\", got \"retry\"\n" +
		"route.yaml:3:20: stream_check_mode: must be \"realtime\" or \"final_packet\", got \"batch\"\n" +
		"route.yaml:4:26: stream_check_cache_size: must be positive, got -1\n" +
		"route.yaml:5:12: deny_code: must be an HTTP status from 200 to 599, got 700\n" +
		"route.yaml:6:1: denycode: unknown field \"denycode\" (did you mean \"deny_code\"?)"
	if got != wantErr {
		t.Fatalf("problems:\n%s\nwant\n%s", got, wantErr)
	}
}
