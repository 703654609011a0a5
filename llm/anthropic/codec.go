// Package anthropic reads and writes the Anthropic Messages protocol
// (POST /v1/messages and /v1/messages/count_tokens): requests, responses,
// streams and errors, to and from the neutral model of package llm.
package anthropic

import (
	"net/http"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// DefaultMaxTokens is the max_tokens of an encoded request that sets
// none: Messages requires one, the other protocols do not.
const DefaultMaxTokens = 4096

// Codec is the Messages codec. Its zero value is ready to use.
type Codec struct {
	// MaxTokens is the max_tokens of encoded requests that set none;
	// 0 means DefaultMaxTokens.
	MaxTokens int64
	// Now is the clock used for ids made up when a stream has none; nil
	// means time.Now.
	Now func() time.Time
}

var _ llm.Codec = Codec{}

// Protocol returns llm.AnthropicMessages.
func (Codec) Protocol() llm.Protocol { return llm.AnthropicMessages }

// The error types of Messages, by HTTP status.
var errorTypes = map[int]string{
	http.StatusBadRequest:            "invalid_request_error",
	http.StatusUnauthorized:          "authentication_error",
	http.StatusPaymentRequired:       "billing_error",
	http.StatusForbidden:             "permission_error",
	http.StatusNotFound:              "not_found_error",
	http.StatusConflict:              "conflict_error",
	http.StatusRequestEntityTooLarge: "request_too_large",
	http.StatusTooManyRequests:       "rate_limit_error",
	http.StatusInternalServerError:   "api_error",
	http.StatusServiceUnavailable:    "overloaded_error",
	http.StatusGatewayTimeout:        "timeout_error",
	529:                              "overloaded_error",
}

// ErrorType returns the Messages error type of an HTTP status.
func ErrorType(status int) string {
	if t, ok := errorTypes[status]; ok {
		return t
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// statusOf returns the HTTP status of a Messages error type, for errors
// that arrive in a stream without one.
func statusOf(typ string) int {
	switch typ {
	case "overloaded_error":
		return 529
	case "api_error":
		return http.StatusInternalServerError
	}
	for status, t := range errorTypes {
		if t == typ && status != http.StatusServiceUnavailable {
			return status
		}
	}
	return http.StatusInternalServerError
}

// knownType reports whether typ is a Messages error type.
func knownType(typ string) bool {
	for _, t := range errorTypes {
		if t == typ {
			return true
		}
	}
	return false
}

// EncodeError writes e as {"type":"error","error":{"type":…,"message":…}}.
// The type is e.Type when Messages knows it, else derived from e.Status.
func (Codec) EncodeError(e *llm.Error) []byte {
	b := make([]byte, 0, 64+len(e.Message))
	return appendError(b, e)
}

func appendError(b []byte, e *llm.Error) []byte {
	typ := e.Type
	if !knownType(typ) {
		typ = ErrorType(e.Status)
	}
	b = append(b, `{"type":"error","error":{"type":`...)
	b = wire.AppendString(b, typ)
	b = append(b, `,"message":`...)
	b = wire.AppendString(b, e.Message)
	return append(b, `}}`...)
}

// DecodeError reads a Messages error body.
func (Codec) DecodeError(status int, body []byte) *llm.Error {
	e := &llm.Error{Status: status}
	var f [2][]byte
	if wire.Top(body, []string{"type", "error"}, f[:]) == nil {
		if o, ok := wire.ObjectOf(f[1]); ok {
			var g [2][]byte
			wire.Collect(&o, []string{"type", "message"}, g[:])
			e.Type, _ = wire.StringOf(g[0])
			e.Message, _ = wire.StringOf(g[1])
		}
	}
	if e.Message == "" {
		e.Message = wire.Unreadable(status, body)
	}
	return e
}
