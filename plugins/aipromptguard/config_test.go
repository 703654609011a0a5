package aipromptguard_test

import (
	"reflect"
	"testing"

	"github.com/phasegate/phasegate/plugins/aipromptguard"
	"github.com/phasegate/phasegate/yamlconf"
)

// TestDecodeYAML decodes configs as the gateway does: into the value
// Spec.Config returns, strictly, then Validate.
func TestDecodeYAML(t *testing.T) {
	cfg := aipromptguard.Spec.Config().(*aipromptguard.Config)
	data := []byte(`{ deny_patterns: ["(?i)ignore previous instructions"], match_all_roles: true }`)
	if _, probs := yamlconf.Load("route.yaml", data, nil, cfg); len(probs) > 0 {
		t.Fatal(probs)
	}
	want := aipromptguard.Config{DenyPatterns: []string{"(?i)ignore previous instructions"}, MatchAllRoles: true}
	if !reflect.DeepEqual(*cfg, want) {
		t.Fatalf("decoded %#v, want %#v", *cfg, want)
	}

	cfg = aipromptguard.Spec.Config().(*aipromptguard.Config)
	_, probs := yamlconf.Load("route.yaml", []byte("allow_patterns:\n  - ok\n  - \"(\"\nmatch_history: true\n"), nil, cfg)
	wantErr := "route.yaml:3:5: allow_patterns[1]: invalid RE2: error parsing regexp: missing closing ): `(`\n" +
		"route.yaml:4:1: match_history: unknown field \"match_history\""
	if got := probs.Error(); got != wantErr {
		t.Fatalf("problems:\n%s\nwant\n%s", got, wantErr)
	}
}
