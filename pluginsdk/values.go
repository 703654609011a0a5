package pluginsdk

import (
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/phases"
)

// RequestID is the request value holding the request's id, published by
// the request-id plugin (which every route runs) for the plugins and log
// lines that name the request.
var RequestID = phases.NewKey[string]("request-id")

// Consumer is the request value holding the username of the consumer the
// request authenticated as, published by key-auth.
var Consumer = phases.NewKey[string]("consumer")

// Get returns the value under k in v, or T's zero value when there is none.
func Get[T any](v *phases.Values, k *phases.Key[T]) T {
	val, _ := k.Get(v)
	return val
}

// LogFielder is implemented by plugins that add fields to the request's
// access-log line: LogFields runs in the log phase, after the log hooks,
// with the request's final summary, and adds to ev only what the plugin
// knows (key-auth: consumer; request-id: request_id). It must not keep s or
// ev: both are valid only during the call.
type LogFielder interface {
	phases.Plugin
	LogFields(s *phases.Summary, ev *zerolog.Event)
}
