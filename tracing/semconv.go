package tracing

// This file is the one mapping from what phasegate observes to the names
// of OpenTelemetry's semantic conventions: every attribute, event and span
// name phasegate emits comes from here. HTTP, URL, server and error names
// are semconv v1.43.0's (stable); the GenAI conventions are still in
// development and not in the Go semconv packages, so their
// names are constants here, as the GenAI spec writes them; phasegate's own
// lifecycle attributes live under phasegate.*. docs/tracing.md lists them.

import (
	"net"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// SchemaURL is the semantic-conventions schema of phasegate's spans.
const SchemaURL = semconv.SchemaURL

// HTTP server and client attributes (stable semconv).
const (
	KeyHTTPRequestMethod         = semconv.HTTPRequestMethodKey
	KeyHTTPRequestMethodOriginal = semconv.HTTPRequestMethodOriginalKey
	KeyHTTPResponseStatusCode    = semconv.HTTPResponseStatusCodeKey
	KeyHTTPRoute                 = semconv.HTTPRouteKey
	KeyURLPath                   = semconv.URLPathKey
	KeyURLScheme                 = semconv.URLSchemeKey
	KeyURLFull                   = semconv.URLFullKey
	KeyServerAddress             = semconv.ServerAddressKey
	KeyServerPort                = semconv.ServerPortKey
	KeyClientAddress             = semconv.ClientAddressKey
	KeyUserAgentOriginal         = semconv.UserAgentOriginalKey
	KeyNetworkProtocolVersion    = semconv.NetworkProtocolVersionKey
	KeyErrorType                 = semconv.ErrorTypeKey
)

// GenAI attributes, as the GenAI semantic conventions name them.
const (
	KeyGenAIOperationName            = attribute.Key("gen_ai.operation.name")
	KeyGenAIProviderName             = attribute.Key("gen_ai.provider.name")
	KeyGenAIRequestModel             = attribute.Key("gen_ai.request.model")
	KeyGenAIRequestStream            = attribute.Key("gen_ai.request.stream")
	KeyGenAIResponseModel            = attribute.Key("gen_ai.response.model")
	KeyGenAIResponseFinishReasons    = attribute.Key("gen_ai.response.finish_reasons")
	KeyGenAIResponseTimeToFirstChunk = attribute.Key("gen_ai.response.time_to_first_chunk")
	KeyGenAIUsageInputTokens         = attribute.Key("gen_ai.usage.input_tokens")
	KeyGenAIUsageOutputTokens        = attribute.Key("gen_ai.usage.output_tokens")
)

// Values of gen_ai.operation.name and gen_ai.provider.name.
const (
	GenAIOperationChat  = "chat"
	GenAIProviderOpenAI = "openai"
)

// phasegate's own attributes.
const (
	// KeyCause is how the request ended: completed, exit, upstream_error,
	// timeout, client_closed, client_timeout or panic (the access log's
	// cause).
	KeyCause = attribute.Key("phasegate.cause")
	// KeyExitPhase and KeyExitPlugin say which plugin, in which phase,
	// decided the response by returning an exit.
	KeyExitPhase  = attribute.Key("phasegate.exit.phase")
	KeyExitPlugin = attribute.Key("phasegate.exit.plugin")
	// KeyRequestID is the request id (request-id's header).
	KeyRequestID = attribute.Key("phasegate.request_id")
	// KeyInstance is the AI instance an attempt went to (ai-proxy for
	// ai-proxy, the instance name for ai-proxy-multi).
	KeyInstance = attribute.Key("phasegate.instance")
	// KeyAttempt numbers a request's upstream attempts from 1.
	KeyAttempt = attribute.Key("phasegate.attempt")
)

// Span event names.
const (
	// EventFirstToken marks the first content event of a streamed LLM
	// response, on the attempt's span; it carries
	// gen_ai.response.time_to_first_chunk.
	EventFirstToken = "phasegate.first_token"
)

// PhaseEvent is the name of the server span's event for entering a
// lifecycle state: the state's own name (access, upstream, header_filter,
// body_filter, log), so that a trace reads as the lifecycle.
func PhaseEvent(state string) string { return state }

// ServerSpanName is a request span's name, as the HTTP conventions want it:
// "{method} {route}", or "{method}" when no route matched. The method is
// the one HTTPMethod records.
func ServerSpanName(method, route string) string {
	m := knownMethod(method)
	if route == "" {
		return m
	}
	return m + " " + route
}

// ClientSpanName is a plain upstream attempt's name: its method.
func ClientSpanName(method string) string { return knownMethod(method) }

// GenAISpanName is an LLM attempt's name, as the GenAI conventions want
// it: "{operation} {model}", or the operation when the model is unknown.
func GenAISpanName(operation, model string) string {
	if model == "" {
		return operation
	}
	return operation + " " + model
}

// knownMethod returns m when the HTTP conventions know it, else "HTTP"
// (for span names) so that a client cannot grow the span names' set.
func knownMethod(m string) string {
	if _, ok := methods[m]; ok {
		return m
	}
	return "HTTP"
}

var methods = map[string]attribute.KeyValue{
	"CONNECT": semconv.HTTPRequestMethodConnect, "DELETE": semconv.HTTPRequestMethodDelete,
	"GET": semconv.HTTPRequestMethodGet, "HEAD": semconv.HTTPRequestMethodHead,
	"OPTIONS": semconv.HTTPRequestMethodOptions, "PATCH": semconv.HTTPRequestMethodPatch,
	"POST": semconv.HTTPRequestMethodPost, "PUT": semconv.HTTPRequestMethodPut,
	"TRACE": semconv.HTTPRequestMethodTrace, "QUERY": semconv.HTTPRequestMethodQuery,
}

// AppendHTTPMethod appends http.request.method: the method when the HTTP
// conventions know it, else _OTHER followed by
// http.request.method_original.
func AppendHTTPMethod(attrs []attribute.KeyValue, method string) []attribute.KeyValue {
	if kv, ok := methods[method]; ok {
		return append(attrs, kv)
	}
	return append(attrs, semconv.HTTPRequestMethodOther, KeyHTTPRequestMethodOriginal.String(method))
}

// AppendServerAddress appends server.address and, when hostPort has one,
// server.port.
func AppendServerAddress(attrs []attribute.KeyValue, hostPort string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return append(attrs, KeyServerAddress.String(hostPort))
	}
	attrs = append(attrs, KeyServerAddress.String(host))
	if p, err := strconv.Atoi(port); err == nil {
		attrs = append(attrs, KeyServerPort.Int(p))
	}
	return attrs
}

// HTTPRoute is http.route: the id of the route that served the request.
func HTTPRoute(route string) attribute.KeyValue { return KeyHTTPRoute.String(route) }

// URLPath is url.path: the canonical path the route was chosen for.
func URLPath(path string) attribute.KeyValue { return KeyURLPath.String(path) }

// HTTPResponseStatusCode is http.response.status_code.
func HTTPResponseStatusCode(code int) attribute.KeyValue {
	return KeyHTTPResponseStatusCode.Int(code)
}

// ErrorType is error.type: phasegate records the cause of a failed request
// (upstream_error, timeout, client_closed, client_timeout, panic) or, for
// a failed response status, the status code.
func ErrorType(v string) attribute.KeyValue { return KeyErrorType.String(v) }

// ServerStatusError is error.type for a request span that answered code:
// the code when it is 500 or more (the server failed), and false below.
func ServerStatusError(code int) (attribute.KeyValue, bool) {
	return statusError(code, 500)
}

// ClientStatusError is error.type for an upstream attempt that got code:
// the code when it is 400 or more, and false below.
func ClientStatusError(code int) (attribute.KeyValue, bool) {
	return statusError(code, 400)
}

func statusError(code, from int) (attribute.KeyValue, bool) {
	if code < from {
		return attribute.KeyValue{}, false
	}
	return KeyErrorType.String(strconv.Itoa(code)), true
}

// GenAIOperationName is gen_ai.operation.name.
func GenAIOperationName(op string) attribute.KeyValue { return KeyGenAIOperationName.String(op) }

// GenAIProviderName is gen_ai.provider.name for an ai-proxy provider:
// "openai" for openai; other providers keep their config name
// (openai-compatible), a value the GenAI conventions leave to the
// instrumentation.
func GenAIProviderName(provider string) attribute.KeyValue {
	return KeyGenAIProviderName.String(provider)
}

// GenAIRequestModel is gen_ai.request.model: the model sent upstream.
func GenAIRequestModel(model string) attribute.KeyValue {
	return KeyGenAIRequestModel.String(model)
}

// GenAIRequestStream is gen_ai.request.stream: whether the client asked
// for a stream.
func GenAIRequestStream(stream bool) attribute.KeyValue { return KeyGenAIRequestStream.Bool(stream) }

// GenAIResponseModel is gen_ai.response.model: the model the upstream says
// answered.
func GenAIResponseModel(model string) attribute.KeyValue {
	return KeyGenAIResponseModel.String(model)
}

// GenAIResponseFinishReasons is gen_ai.response.finish_reasons, one per
// choice.
func GenAIResponseFinishReasons(reasons ...string) attribute.KeyValue {
	return KeyGenAIResponseFinishReasons.StringSlice(reasons)
}

// GenAIUsageInputTokens is gen_ai.usage.input_tokens (prompt tokens).
func GenAIUsageInputTokens(n int) attribute.KeyValue { return KeyGenAIUsageInputTokens.Int(n) }

// GenAIUsageOutputTokens is gen_ai.usage.output_tokens (completion tokens).
func GenAIUsageOutputTokens(n int) attribute.KeyValue { return KeyGenAIUsageOutputTokens.Int(n) }

// GenAIResponseTimeToFirstChunk is gen_ai.response.time_to_first_chunk in
// seconds, from sending the request to the first content event.
func GenAIResponseTimeToFirstChunk(seconds float64) attribute.KeyValue {
	return KeyGenAIResponseTimeToFirstChunk.Float64(seconds)
}

// Cause is phasegate.cause.
func Cause(cause string) attribute.KeyValue { return KeyCause.String(cause) }

// ExitPhase is phasegate.exit.phase.
func ExitPhase(phase string) attribute.KeyValue { return KeyExitPhase.String(phase) }

// ExitPlugin is phasegate.exit.plugin.
func ExitPlugin(plugin string) attribute.KeyValue { return KeyExitPlugin.String(plugin) }

// RequestID is phasegate.request_id.
func RequestID(id string) attribute.KeyValue { return KeyRequestID.String(id) }

// Instance is phasegate.instance.
func Instance(name string) attribute.KeyValue { return KeyInstance.String(name) }

// Attempt is phasegate.attempt, counted from 1.
func Attempt(n int) attribute.KeyValue { return KeyAttempt.Int(n) }
