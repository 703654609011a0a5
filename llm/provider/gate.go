package provider

import (
	"context"
	"fmt"

	"github.com/phasegate/phasegate/fsm"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/pluginsdk"
)

// AttemptGate admits or refuses each upstream attempt of a request before
// it is sent: a per-instance limit publishes one under Gate in the
// request's values (ai-rate-limiting's instances).
type AttemptGate interface {
	// Admit is called before an attempt on in that would send model. It
	// may acquire on scope, the attempt's own scope, which closes when the
	// attempt ends (failed, or its response body closed), so what it holds
	// comes back with the attempt. A zero Exit admits the attempt; an exit
	// skips the instance as if it had failed, whatever fallback_on says,
	// since nothing was sent: Serve tries the next instance, and answers
	// with the exit when no instance is left and none answered.
	Admit(ctx context.Context, r *phases.Request, in *Instance, model string, scope *fsm.Scope) phases.Exit
}

// Gate is the request value holding the request's AttemptGate, if any.
var Gate = phases.NewKey[AttemptGate]("llm attempt gate")

// RefusedError is the error of an attempt its AttemptGate refused.
type RefusedError struct {
	// Instance is the instance skipped.
	Instance string
	// Exit is the gate's answer.
	Exit phases.Exit
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("provider: instance %q refused by the request's gate (%d)", e.Instance, e.Exit.Status())
}

// admit opens a's scope and asks the request's gate, if any, to admit a.
// A refused attempt's scope is closed at once.
func (in *Instance) admit(ctx context.Context, r *phases.Request, a *attempt) error {
	g, ok := Gate.Get(r.Values)
	if !ok || g == nil {
		return nil
	}
	a.scope = r.Scope.Child(AttemptScope)
	if ex := g.Admit(ctx, r, in, a.model, a.scope); ex.Exited() {
		a.scope.Close()
		return &RefusedError{Instance: in.name, Exit: ex}
	}
	return nil
}

// logSkip logs an instance its gate refused, before the next is tried.
func (p *Proxy) logSkip(r *phases.Request, e *RefusedError) {
	p.Logger.Info().Str("request_id", pluginsdk.Get(r.Values, pluginsdk.RequestID)).Str("instance", e.Instance).
		Int("status", e.Exit.Status()).Msg("llm upstream instance refused by its limit, falling back")
}
