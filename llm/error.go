package llm

import (
	"fmt"
	"net/http"
)

// Error is an error answer: a request the gateway or the provider refused,
// or a failure. Every codec can write it as its protocol's error body.
type Error struct {
	// Status is the HTTP status.
	Status int `json:",omitzero"`
	// Type is the error's type as its source names it
	// ("invalid_request_error", "rate_limit_error", ...); empty to let the
	// encoder derive it from Status.
	Type string `json:",omitzero"`
	// Message is meant for the user.
	Message string `json:",omitzero"`
	// Code and Param are OpenAI's optional code and offending parameter.
	Code  string `json:",omitzero"`
	Param string `json:",omitzero"`
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// The error types shared by the protocols, for errors the gateway makes.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAPIError       = "api_error"
)

// InvalidRequest returns a 400 Error for a request the gateway refuses,
// with a message formatted as by fmt.Sprintf.
func InvalidRequest(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a 400 Error about a field of a request body,
// "field: problem"; the field is a JSON path such as "messages[2].content".
func FieldError(field, problem string) *Error {
	msg := problem
	if field != "" {
		msg = field + ": " + problem
	}
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Message: msg, Param: field}
}
