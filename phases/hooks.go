package phases

import (
	"context"

	"github.com/phasegate/phasegate/fsm"
)

// Hooks are the framework's observation points on a chain: where the
// gateway keeps its metrics and access log, and where the property-test
// harness watches. They are not plugins: they cannot exit. Every field is
// optional: the chain fills the nil ones with no-ops, so the runner never
// checks for nil.
type Hooks struct {
	// Context is called once per request, before it enters access, with
	// the context the chain was given; what it returns is the context of
	// every hook and of the upstream. It may acquire on r.Scope, which
	// releases at done: the gateway starts the request's span here and
	// binds its end. Default: ctx unchanged.
	Context func(ctx context.Context, r *Request) context.Context
	// Entered is called for every state the request enters, after the
	// transition and before that phase's plugins run. Accounting that must
	// balance acquires on r.Scope() here, for example the active-requests
	// gauge on entering access. Default: nothing.
	Entered func(r *Request, s fsm.Step)
	// Calling is called before each plugin hook runs. Default: nothing.
	Calling func(r *Request, phase fsm.State, plugin string)
	// Recovered receives every panic recovered from a hook (plugin names the
	// plugin) or from a release function or Entered (plugin is "").
	// Default: nothing.
	Recovered func(r *Request, phase fsm.State, plugin string, v any)
	// Finished runs once per request, after the plugins' log hooks, with the
	// final summary. Default: nothing.
	Finished func(ctx context.Context, s *Summary)
	// Ledger returns a ledger that sees every acquisition and release of the
	// request's bindings and the end of each of its scopes, or nil.
	// Default: no ledger.
	Ledger func(r *Request) fsm.Ledger
}

// ensureDefaults fills every nil field with its default.
func (h *Hooks) ensureDefaults() {
	if h.Context == nil {
		h.Context = func(ctx context.Context, _ *Request) context.Context { return ctx }
	}
	if h.Entered == nil {
		h.Entered = func(*Request, fsm.Step) {}
	}
	if h.Calling == nil {
		h.Calling = func(*Request, fsm.State, string) {}
	}
	if h.Recovered == nil {
		h.Recovered = func(*Request, fsm.State, string, any) {}
	}
	if h.Finished == nil {
		h.Finished = func(context.Context, *Summary) {}
	}
	if h.Ledger == nil {
		h.Ledger = func(*Request) fsm.Ledger { return nil }
	}
}

// Then returns hooks that call h's then next's, for composing observers.
func (h Hooks) Then(next Hooks) Hooks {
	h.ensureDefaults()
	next.ensureDefaults()
	return Hooks{
		Context: func(ctx context.Context, r *Request) context.Context { return next.Context(h.Context(ctx, r), r) },
		Entered: func(r *Request, s fsm.Step) { h.Entered(r, s); next.Entered(r, s) },
		Calling: func(r *Request, p fsm.State, n string) { h.Calling(r, p, n); next.Calling(r, p, n) },
		Recovered: func(r *Request, p fsm.State, n string, v any) {
			h.Recovered(r, p, n, v)
			next.Recovered(r, p, n, v)
		},
		Finished: func(ctx context.Context, s *Summary) { h.Finished(ctx, s); next.Finished(ctx, s) },
		Ledger: func(r *Request) fsm.Ledger {
			a, b := h.Ledger(r), next.Ledger(r)
			switch {
			case a == nil:
				return b
			case b == nil:
				return a
			}
			return ledgers{a, b}
		},
	}
}

type ledgers [2]fsm.Ledger

func (l ledgers) Acquired(e fsm.Entry) {
	l[0].Acquired(e)
	l[1].Acquired(e)
}

func (l ledgers) Released(e fsm.Entry) {
	l[0].Released(e)
	l[1].Released(e)
}

func (l ledgers) Ended(scope uint64, in fsm.State) {
	l[0].Ended(scope, in)
	l[1].Ended(scope, in)
}
