// Package openai reads and writes OpenAI's Chat Completions protocol (POST
// /v1/chat/completions) and its Responses protocol (POST /v1/responses),
// to and from the neutral model of package llm.
//
// Responses is spoken to clients without state kept by the server: a
// request that refers to stored responses, conversations or prompts, or
// asks for a response to be stored, is refused with a message that says so.
package openai

import (
	"net/http"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// errorType returns the OpenAI error type of an HTTP status, for errors
// that come without one.
func errorType(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status >= 400 && status < 500:
		return llm.TypeInvalidRequest
	}
	return "server_error"
}

func encodeError(e *llm.Error) []byte {
	return appendError(make([]byte, 0, 96+len(e.Message)), e)
}

// appendError writes the error envelope both OpenAI protocols use:
// {"error":{"message":…,"type":…,"param":…,"code":…}}. Without a code of
// its own, the code is the HTTP status, as the gateway's own errors have it.
func appendError(b []byte, e *llm.Error) []byte {
	b = append(b, `{"error":`...)
	b = appendErrorObject(b, e)
	return append(b, '}')
}

func appendErrorObject(b []byte, e *llm.Error) []byte {
	typ := e.Type
	if typ == "" {
		typ = errorType(e.Status)
	}
	b = append(b, `{"message":`...)
	b = wire.AppendString(b, e.Message)
	b = append(b, `,"type":`...)
	b = wire.AppendString(b, typ)
	b = append(b, `,"param":`...)
	if e.Param != "" {
		b = wire.AppendString(b, e.Param)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"code":`...)
	if e.Code != "" {
		b = wire.AppendString(b, e.Code)
	} else {
		b = wire.AppendInt(b, e.Status)
	}
	return append(b, '}')
}

// decodeError reads an OpenAI error body. Besides the standard envelope it
// reads the shapes OpenAI-compatible servers use: {"error":"text"} and
// {"message":"text"}.
func decodeError(status int, body []byte) *llm.Error {
	e := &llm.Error{Status: status}
	var f [3][]byte
	if wire.Top(body, []string{"error", "message", "detail"}, f[:]) == nil {
		switch wire.KindOf(f[0]) {
		case wire.Obj:
			readErrorObject(f[0], e)
		case wire.String:
			e.Message, _ = wire.StringOf(f[0])
		}
		if e.Message == "" {
			e.Message, _ = wire.StringOf(f[1])
		}
		if e.Message == "" {
			e.Message, _ = wire.StringOf(f[2])
		}
	}
	if e.Message == "" {
		e.Message = wire.Unreadable(status, body)
	}
	return e
}

// readErrorObject reads {"message","type","param","code"} into e; a
// numeric code is left out, being the HTTP status.
func readErrorObject(raw []byte, e *llm.Error) {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return
	}
	var g [4][]byte
	wire.Collect(&o, []string{"message", "type", "param", "code"}, g[:])
	e.Message, _ = wire.StringOf(g[0])
	e.Type, _ = wire.StringOf(g[1])
	e.Param, _ = wire.StringOf(g[2])
	e.Code, _ = wire.StringOf(g[3])
}

// clock returns now, or time.Now if now is nil.
func clock(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}
