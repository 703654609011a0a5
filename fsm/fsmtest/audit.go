// Package fsmtest checks, in tests, what package fsm promises about
// bindings and scopes.
//
// An Audit is an fsm.Ledger: set it on a machine (Machine.SetLedger, or
// phases.Hooks.Ledger for a whole chain) and it checks each acquisition,
// release and scope end as it is told of it:
//
//   - binding ids are unique within the request;
//   - each binding is released exactly once, in the scope it was acquired
//     in, with the resource (name and label values) it was acquired with;
//   - when a scope ends, every binding it held has been released: its
//     bindings are released when their scope ends, not merely by done;
//   - a binding acquired in a scope that has ended is released at once;
//   - each scope ends once, and the root scope ends in fsm.StateDone.
//
// Finish adds the end-of-request checks (nothing left held, every scope
// ended) and returns every rule broken. phases/phasetest builds its
// lifecycle checks on an Audit; docs/testing.md describes them.
package fsmtest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"

	"github.com/phasegate/phasegate/fsm"
)

// Binding is one binding as an Audit saw it. Acquired and Released are the
// positions of its entries in the order the Audit was told of entries and
// scope ends (1 for the first); Released is 0 while it is held.
type Binding struct {
	fsm.Entry
	Acquired   int
	Released   int
	Releases   int
	ReleasedIn fsm.State
}

// Scope is one scope as an Audit saw it: the root, or a child whose
// entry was acquired (Name is that entry's resource name) and which has
// held a binding or ended. Ended is the position of its end, 0 while open.
type Scope struct {
	ID      uint64
	Name    string
	Parent  uint64
	Ended   int
	EndedIn fsm.State
}

// Audit is an fsm.Ledger that checks Scope's promises. The zero Audit is
// ready to use; it is safe for concurrent use.
type Audit struct {
	mu       sync.Mutex
	seq      int
	order    []uint64 // binding ids in order of acquisition
	bindings map[uint64]*Binding
	scopes   map[uint64]*Scope
	expect   uint64 // a binding whose release must be the next entry
	why      string // what broke when it is not
	problems []string
}

var _ fsm.Ledger = (*Audit)(nil)

func (a *Audit) bad(format string, args ...any) {
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

// init makes the maps and the root scope. a.mu is held.
func (a *Audit) init() {
	if a.bindings == nil {
		a.bindings = map[uint64]*Binding{}
		a.scopes = map[uint64]*Scope{fsm.RootScope: {ID: fsm.RootScope, Name: "request"}}
	}
	a.seq++
}

// scope returns the scope id, known from the entry that holds it, or nil
// if there is no such entry. a.mu is held.
func (a *Audit) scope(id uint64) *Scope {
	if sc, ok := a.scopes[id]; ok {
		return sc
	}
	b, ok := a.bindings[id]
	if !ok {
		return nil
	}
	sc := &Scope{ID: id, Name: b.Resource.Name, Parent: b.Scope}
	a.scopes[id] = sc
	return sc
}

// name renders a scope for a report. a.mu is held.
func (a *Audit) name(id uint64) string {
	if sc := a.scope(id); sc != nil {
		return fmt.Sprintf("%q (scope %d)", sc.Name, id)
	}
	return fmt.Sprintf("scope %d", id)
}

// settle checks that the entry now reported (the release of releasing, or
// 0 for anything else) is the release a.expect was waiting for. a.mu is
// held.
func (a *Audit) settle(releasing uint64) {
	if a.expect != 0 && a.expect != releasing {
		a.bad("%s", a.why)
	}
	a.expect = 0
}

// Acquired implements fsm.Ledger.
func (a *Audit) Acquired(e fsm.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	a.settle(0)
	if _, dup := a.bindings[e.ID]; dup {
		a.bad("binding id %d acquired twice (%s)", e.ID, e.Resource)
		return
	}
	sc := a.scope(e.Scope)
	switch {
	case sc == nil:
		a.bad("%s acquired in scope %d, which no entry holds", e.Resource, e.Scope)
	case sc.Ended > 0:
		a.expect = e.ID
		a.why = fmt.Sprintf("%s was acquired in %s after it ended, and not released at once", e.Resource, a.name(e.Scope))
	}
	e.Resource.Labels = slices.Clone(e.Resource.Labels)
	a.bindings[e.ID] = &Binding{Entry: e, Acquired: a.seq}
	a.order = append(a.order, e.ID)
}

// Released implements fsm.Ledger.
func (a *Audit) Released(e fsm.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	a.settle(e.ID)
	b, ok := a.bindings[e.ID]
	if !ok {
		a.bad("%s released without an acquisition (id %d)", e.Resource, e.ID)
		return
	}
	b.Releases++
	if b.Releases > 1 {
		a.bad("%s released %d times", b.Resource, b.Releases)
		return
	}
	b.Released, b.ReleasedIn = a.seq, e.State
	if e.Resource.String() != b.Resource.String() {
		a.bad("%s released as %s", b.Resource, e.Resource)
	}
	if e.Scope != b.Scope {
		a.bad("%s acquired in %s, released from %s", b.Resource, a.name(b.Scope), a.name(e.Scope))
	}
	if sc, isScope := a.scopes[e.ID]; isScope && sc.Ended == 0 {
		a.bad("the entry of scope %q was released before the scope ended", sc.Name)
	}
}

// Ended implements fsm.Ledger.
func (a *Audit) Ended(scope uint64, in fsm.State) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	if a.expect != scope {
		// A child opened in an ended scope ends before its entry is released.
		a.settle(0)
	}
	sc := a.scope(scope)
	switch {
	case sc == nil:
		a.bad("scope %d ended, but no entry holds it", scope)
		return
	case sc.Ended > 0:
		a.bad("%s ended twice", a.name(scope))
		return
	}
	sc.Ended, sc.EndedIn = a.seq, in
	if scope == fsm.RootScope && in != fsm.StateDone {
		a.bad("the request scope ended in state %s, not done", in)
	}
	for _, id := range a.order {
		if b := a.bindings[id]; b.Scope == scope && b.Releases == 0 {
			a.bad("%s ended while %s was still held", a.name(scope), b.Resource)
		}
	}
	if scope != fsm.RootScope {
		a.expect = scope
		a.why = fmt.Sprintf("%s ended, and its entry was not released in its parent at once", a.name(scope))
	}
}

// Finish checks the end of the request: every binding released, every
// scope ended. It returns every rule broken so far, in the order found.
func (a *Audit) Finish() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.init()
	a.settle(0)
	for _, id := range a.order {
		if b := a.bindings[id]; b.Releases == 0 {
			a.bad("%s was never released", b.Resource)
		}
	}
	for _, sc := range a.sortedScopes() {
		if sc.Ended == 0 {
			a.bad("%s never ended", a.name(sc.ID))
		}
	}
	return slices.Clone(a.problems)
}

// Problems returns the rules broken so far.
func (a *Audit) Problems() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.problems)
}

// Bindings returns the bindings seen, in order of acquisition.
func (a *Audit) Bindings() []Binding {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Binding, len(a.order))
	for i, id := range a.order {
		out[i] = *a.bindings[id]
	}
	return out
}

// Scopes returns the scopes seen, the root first, then in order of id.
func (a *Audit) Scopes() []Scope {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.scopes == nil {
		return nil
	}
	var out []Scope
	for _, sc := range a.sortedScopes() {
		out = append(out, *sc)
	}
	return out
}

// sortedScopes returns the scopes by id (the root is 0). a.mu is held.
func (a *Audit) sortedScopes() []*Scope {
	out := make([]*Scope, 0, len(a.scopes))
	for _, sc := range a.scopes {
		out = append(out, sc)
	}
	slices.SortFunc(out, func(x, y *Scope) int { return cmp.Compare(x.ID, y.ID) })
	return out
}
