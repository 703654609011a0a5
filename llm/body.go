package llm

import (
	"errors"
	"net/http"

	"github.com/phasegate/phasegate/phases"
)

// Messages of the request-body refusals every LLM plugin shares.
const (
	MsgTooLarge   = "request body too large"
	MsgUnreadable = "could not read the request body"
)

// Refuse returns the exit that answers a request the gateway refuses:
// status with an invalid_request_error whose message is msg.
func Refuse(status int, msg string) phases.Exit {
	return phases.Error(status, TypeInvalidRequest, msg)
}

// ReadRequest reads r's body and parses it, or returns the exit that
// refuses it: 413 for a body over the route's limit (Request.MaxBodyBytes),
// 400 for one that cannot be read, and 400 with the parser's message for
// one that does not parse.
func ReadRequest[T any](r *phases.Request, parse func([]byte) (T, error)) ([]byte, T, phases.Exit) {
	var zero T
	body, err := r.Body()
	switch {
	case errors.Is(err, phases.ErrBodyTooLarge):
		return nil, zero, Refuse(http.StatusRequestEntityTooLarge, MsgTooLarge)
	case err != nil:
		return nil, zero, Refuse(http.StatusBadRequest, MsgUnreadable)
	}
	req, err := parse(body)
	if err != nil {
		return body, zero, Refuse(http.StatusBadRequest, err.Error())
	}
	return body, req, phases.Exit{}
}
