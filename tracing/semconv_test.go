package tracing_test

import (
	"strconv"
	"testing"

	"go.opentelemetry.io/otel/attribute"

	"github.com/phasegate/phasegate/tracing"
)

func TestSpanNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{tracing.ServerSpanName("POST", "chat"), "POST chat"},
		{tracing.ServerSpanName("GET", ""), "GET"},
		{tracing.ServerSpanName("BREW", "coffee"), "HTTP coffee"}, // a client cannot invent span names
		{tracing.ClientSpanName("PUT"), "PUT"},
		{tracing.ClientSpanName("get"), "HTTP"}, // methods are case-sensitive
		{tracing.GenAISpanName("chat", "gpt-4o-mini"), "chat gpt-4o-mini"},
		{tracing.GenAISpanName("chat", ""), "chat"},
		{tracing.PhaseEvent("header_filter"), "header_filter"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestHTTPAttributes(t *testing.T) {
	check := func(name string, got []attribute.KeyValue, want ...attribute.KeyValue) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", name, got, want)
			}
		}
	}
	check("known method", tracing.AppendHTTPMethod(nil, "GET"), attribute.String("http.request.method", "GET"))
	check("unknown method", tracing.AppendHTTPMethod(nil, "BREW"),
		attribute.String("http.request.method", "_OTHER"), attribute.String("http.request.method_original", "BREW"))
	check("host:port", tracing.AppendServerAddress(nil, "api.example.com:8443"),
		attribute.String("server.address", "api.example.com"), attribute.Int("server.port", 8443))
	check("bare host", tracing.AppendServerAddress(nil, "api.example.com"), attribute.String("server.address", "api.example.com"))
	check("IPv6", tracing.AppendServerAddress(nil, "[::1]:80"), attribute.String("server.address", "::1"), attribute.Int("server.port", 80))

	// error.type is the status: from 500 on a request span, from 400 on
	// an upstream attempt.
	for _, tc := range []struct {
		code           int
		server, client bool
	}{
		{200, false, false}, {404, false, true}, {429, false, true}, {502, true, true},
	} {
		want := attribute.String("error.type", strconv.Itoa(tc.code))
		if kv, ok := tracing.ServerStatusError(tc.code); ok != tc.server || (ok && kv != want) {
			t.Errorf("ServerStatusError(%d) = %v, %v", tc.code, kv, ok)
		}
		if kv, ok := tracing.ClientStatusError(tc.code); ok != tc.client || (ok && kv != want) {
			t.Errorf("ClientStatusError(%d) = %v, %v", tc.code, kv, ok)
		}
	}
}

// TestAttributeNames pins every name phasegate emits: dashboards and
// alerts are written against them.
func TestAttributeNames(t *testing.T) {
	for got, want := range map[attribute.Key]string{
		tracing.KeyHTTPRequestMethod: "http.request.method", tracing.KeyURLPath: "url.path",
		tracing.KeyHTTPRoute: "http.route", tracing.KeyHTTPResponseStatusCode: "http.response.status_code",
		tracing.KeyErrorType: "error.type", tracing.KeyServerAddress: "server.address", tracing.KeyServerPort: "server.port",
		tracing.KeyURLFull: "url.full", tracing.KeyURLScheme: "url.scheme", tracing.KeyClientAddress: "client.address",
		tracing.KeyUserAgentOriginal: "user_agent.original", tracing.KeyNetworkProtocolVersion: "network.protocol.version",
		tracing.KeyGenAIOperationName: "gen_ai.operation.name", tracing.KeyGenAIProviderName: "gen_ai.provider.name",
		tracing.KeyGenAIRequestModel: "gen_ai.request.model", tracing.KeyGenAIResponseModel: "gen_ai.response.model",
		tracing.KeyGenAIUsageInputTokens: "gen_ai.usage.input_tokens", tracing.KeyGenAIUsageOutputTokens: "gen_ai.usage.output_tokens",
		tracing.KeyGenAIResponseFinishReasons: "gen_ai.response.finish_reasons", tracing.KeyGenAIRequestStream: "gen_ai.request.stream",
		tracing.KeyGenAIResponseTimeToFirstChunk: "gen_ai.response.time_to_first_chunk",
		tracing.KeyCause:                         "phasegate.cause", tracing.KeyExitPhase: "phasegate.exit.phase", tracing.KeyExitPlugin: "phasegate.exit.plugin",
		tracing.KeyRequestID: "phasegate.request_id", tracing.KeyInstance: "phasegate.instance", tracing.KeyAttempt: "phasegate.attempt",
	} {
		if string(got) != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
}
