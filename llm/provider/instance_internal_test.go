package provider

import (
	"strings"
	"testing"
)

func TestProviderOpenAIDefaultsTheEndpoint(t *testing.T) {
	in, err := NewInstance(Config{Name: "oa", Provider: ProviderOpenAI}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := in.endpoint.String(); got != DefaultOpenAIEndpoint {
		t.Errorf("endpoint %s", got)
	}
	if in.timeout != DefaultTimeout || in.maxResp != DefaultMaxResponseBytes || in.maxStream != DefaultMaxStreamDuration {
		t.Errorf("defaults %s %d %s", in.timeout, in.maxResp, in.maxStream)
	}
	if _, err := NewInstance(Config{Provider: ProviderOpenAI}, nil); err == nil {
		t.Error("an instance without a name was accepted")
	}
}

func TestInvalidInstanceHidesSecrets(t *testing.T) {
	_, err := NewInstance(Config{Name: "x", Provider: ProviderOpenAICompatible, Endpoint: "ftp://user:pw@h/p?key=sk-secret"}, nil)
	if err == nil || strings.Contains(err.Error(), "sk-secret") || strings.Contains(err.Error(), "pw") {
		t.Errorf("error %v", err)
	}
}

func TestQuery(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		auth     map[string]string
		client   string
		want     string
	}{
		{"http://h/v1", nil, "", ""},
		{"http://h/v1", nil, "a=1&b=2", "a=1&b=2"},
		{"http://h/v1?v=1", nil, "v=2&a=1", "a=1&v=1"},
		{"http://h/v1", map[string]string{"key": "s"}, "key=client&a=1", "a=1&key=s"},
		{"http://h/v1?key=e", map[string]string{"key": "s"}, "", "key=s"},
	} {
		in, err := NewInstance(Config{Name: "x", Provider: ProviderOpenAICompatible, Endpoint: tc.endpoint, AuthQuery: tc.auth}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := in.query(tc.client); got != tc.want {
			t.Errorf("%s + %q with %v: %q, want %q", tc.endpoint, tc.client, tc.auth, got, tc.want)
		}
	}
}

func TestConfigValidateZeroIsDefault(t *testing.T) {
	c := Config{Name: "x", Provider: ProviderOpenAI}
	if errs := c.Validate(true); len(errs) != 0 {
		t.Errorf("zero is default: %v", errs)
	}
	if errs := c.Validate(false); len(errs) != 3 {
		t.Errorf("zero is not default: %v", errs)
	}
	errs := Prefix("instances[2]", c.Validate(false))
	if errs[0].Field != "instances[2].timeout" {
		t.Errorf("prefixed %v", errs)
	}
}
