package fsm

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
)

// Resource describes what a binding holds: a name (for example the metric
// name "phasegate_llm_active_connections") and the label values it was
// acquired with, in order. It is what a Ledger sees.
type Resource struct {
	Name   string
	Labels []string
}

// String renders r as name{label,label}.
func (r Resource) String() string {
	if len(r.Labels) == 0 {
		return r.Name
	}
	return r.Name + "{" + strings.Join(r.Labels, ",") + "}"
}

// RootScope is the scope id of a machine's root scope.
const RootScope uint64 = 0

// Entry is one acquisition or release, as a Ledger is told of it.
type Entry struct {
	// ID identifies the binding within one use of the machine: ids start
	// at 1 for every request.
	ID uint64
	// Scope is the id of the scope holding the binding (Scope.ID):
	// RootScope, or for a child scope the ID of the entry that holds the
	// child in its parent.
	Scope uint64
	// Resource is what the binding holds, as acquired.
	Resource Resource
	// State is the machine's state when it happened.
	State State
}

// Ledger is told of every acquisition and release in a machine's scopes,
// and of the end of each scope, in order. The property-test harness
// (phases/phasetest) uses one to prove that every binding is released
// exactly once, with its acquisition labels, by the time its scope ends.
type Ledger interface {
	// Acquired is told of a new binding, right after it is recorded.
	Acquired(e Entry)
	// Released is told of a release, right after its release function ran.
	Released(e Entry)
	// Ended is told that a scope has closed: every binding it held has
	// been released (and reported), and any later acquisition in it is
	// released at once. A child scope ends just before its own entry is
	// released in its parent; the root scope ends when the machine reaches
	// StateDone.
	Ended(scope uint64, in State)
}

// UnsettledError is what Close reports to Machine.Recovered when bindings
// are still held after it has released each of them once: their release did
// not settle them. Close reports it rather than retrying forever; it means a
// bug in this package.
type UnsettledError struct {
	Scope uint64
	Held  []Resource
}

func (e *UnsettledError) Error() string {
	names := make([]string, len(e.Held))
	for i, r := range e.Held {
		names[i] = r.String()
	}
	return fmt.Sprintf("fsm: scope %d closed with bindings still held: %s", e.Scope, strings.Join(names, ", "))
}

// Scope owns bindings and releases each exactly once when it is closed, in
// reverse order of acquisition. A machine's root scope closes on entering
// StateDone; a child scope (Scope.Child) closes when its owner calls Close,
// and at the latest with its parent. A Scope is safe for concurrent use.
type Scope struct {
	m       *Machine // set on a machine's root scope only
	root    *Scope   // the machine's root scope; nil on the root itself
	rootGen uint64   // root.gen when this child was opened
	id      uint64   // RootScope, or the id of self

	mu     sync.Mutex
	gen    uint64 // bumped on every reset, so handles from an earlier use are inert
	closed bool
	held   []held
	self   Binding       // a child's own binding in its parent
	ledger Ledger        // root only
	ids    atomic.Uint64 // root only: binding ids, unique per machine use
}

type held struct {
	id       uint64
	res      Resource
	release  func()
	released bool
}

// Binding is the handle of one acquisition. The zero Binding holds nothing:
// releasing it does nothing, which makes "release without acquire" a no-op by
// construction. Copies of a Binding share the one underlying acquisition.
type Binding struct {
	s   *Scope
	gen uint64
	id  uint64
}

// reset readies a root scope for the machine's next use: handles of the
// previous use become inert and ids start again.
func (s *Scope) reset() {
	s.mu.Lock()
	s.gen++
	s.closed = false
	clear(s.held)
	s.held = s.held[:0]
	s.ledger = nil
	s.ids.Store(0)
	s.mu.Unlock()
}

// SetLedger makes l see every acquisition and release in the machine's
// scopes from now on. Only the root scope's ledger is used.
func (m *Machine) SetLedger(l Ledger) {
	m.root.mu.Lock()
	m.root.ledger = l
	m.root.mu.Unlock()
}

// ID identifies the scope in ledger entries: RootScope for a machine's root
// scope, else the ID of the entry that holds the child in its parent.
func (s *Scope) ID() uint64 { return s.id }

// machine returns the machine s belongs to and whether s still belongs to
// the same use of it (a child scope kept past its request does not).
func (s *Scope) machine() (*Machine, bool) {
	if s.root == nil {
		return s.m, s.m != nil
	}
	s.root.mu.Lock()
	same := s.root.gen == s.rootGen
	s.root.mu.Unlock()
	return s.root.m, same && s.root.m != nil
}

// observe returns the ledger and the current state to report an
// acquisition or release with. It must be called without s.mu held.
func (s *Scope) observe() (Ledger, State) {
	m, ok := s.machine()
	if !ok {
		return nil, ""
	}
	m.root.mu.Lock()
	l := m.root.ledger
	m.root.mu.Unlock()
	if l == nil {
		return nil, ""
	}
	return l, m.State()
}

func (s *Scope) newID() uint64 {
	if s.root == nil {
		return s.ids.Add(1)
	}
	return s.root.ids.Add(1)
}

// Acquire records that release must run exactly once when the scope closes
// (or earlier, through the returned Binding). The caller has already taken the
// resource: Acquire is called right after the increment, with the label
// values used for it. On a scope that is already closed, release runs at once
// and the returned Binding is inert, so a late acquisition cannot leak.
func (s *Scope) Acquire(r Resource, release func()) Binding {
	return s.acquire(s.newID(), r, release)
}

func (s *Scope) acquire(id uint64, r Resource, release func()) Binding {
	l, st := s.observe()
	e := Entry{ID: id, Scope: s.id, Resource: r, State: st}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if l != nil {
			l.Acquired(e)
		}
		s.runRelease(release)
		if l != nil {
			l.Released(e)
		}
		return Binding{}
	}
	s.held = append(s.held, held{id: id, res: r, release: release})
	gen := s.gen
	s.mu.Unlock()
	if l != nil {
		l.Acquired(e)
	}
	return Binding{s: s, gen: gen, id: id}
}

// Release releases the binding now, if it is still held. It is safe to call
// any number of times from any goroutine; the release function runs at most
// once. On the zero Binding, or one whose machine has been reused, it does
// nothing.
func (b Binding) Release() {
	if b.s == nil {
		return
	}
	b.s.release(b.gen, b.id)
}

// Held reports whether the binding is still held.
func (b Binding) Held() bool {
	if b.s == nil {
		return false
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.gen != b.s.gen {
		return false
	}
	for i := range b.s.held {
		if b.s.held[i].id == b.id {
			return !b.s.held[i].released
		}
	}
	return false
}

func (s *Scope) release(gen, id uint64) {
	s.mu.Lock()
	if gen != s.gen {
		s.mu.Unlock()
		return
	}
	var h *held
	for i := len(s.held) - 1; i >= 0; i-- {
		if s.held[i].id == id {
			h = &s.held[i]
			break
		}
	}
	if h == nil || h.released {
		s.mu.Unlock()
		return
	}
	h.released = true
	fn, res := h.release, h.res
	h.release = nil
	s.mu.Unlock()
	l, st := s.observe()
	s.runRelease(fn)
	if l != nil {
		l.Released(Entry{ID: id, Scope: s.id, Resource: res, State: st})
	}
}

func (s *Scope) runRelease(fn func()) {
	if fn == nil {
		return
	}
	if m, ok := s.machine(); ok {
		m.guard("release", fn)
		return
	}
	fn()
}

// Close releases every binding still held, newest first, and marks the scope
// closed: later acquisitions are released at once. A child scope then leaves
// its parent. Close is idempotent.
func (s *Scope) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	gen, n := s.gen, len(s.held)
	s.mu.Unlock()
	// A closed scope takes no new bindings, so this pass sees them all and
	// tries each once: a release that fails to settle its binding is
	// reported below, never retried forever.
	for i := n - 1; i >= 0; i-- {
		s.mu.Lock()
		if gen != s.gen {
			s.mu.Unlock()
			return
		}
		id, done := s.held[i].id, s.held[i].released
		s.mu.Unlock()
		if !done {
			s.release(gen, id)
		}
	}
	s.reportUnsettled(gen)
	if l, st := s.observe(); l != nil {
		l.Ended(s.id, st)
	}
	s.mu.Lock()
	self := s.self
	s.mu.Unlock()
	self.Release()
}

// reportUnsettled tells the machine's Recovered of the bindings a Close
// left held.
func (s *Scope) reportUnsettled(gen uint64) {
	s.mu.Lock()
	var left []Resource
	if gen == s.gen {
		for _, h := range s.held {
			if !h.released {
				left = append(left, h.res)
			}
		}
	}
	s.mu.Unlock()
	if len(left) == 0 {
		return
	}
	if m, ok := s.machine(); ok && m.Recovered != nil {
		m.Recovered("close", &UnsettledError{Scope: s.id, Held: left})
	}
}

// Closed reports whether the scope has been closed.
func (s *Scope) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Child opens a scope for a shorter lifetime inside s, for example one
// upstream attempt, named name in the ledger. Closing the child releases its
// bindings and ends it; closing s (or reaching done) closes the child if its
// owner has not. The child is itself held by s as a binding, released when
// the child closes.
func (s *Scope) Child(name string) *Scope {
	// The child belongs to its parent's use of the machine: a child of a
	// scope kept past its request is as inert as its parent.
	c := &Scope{root: s.root, rootGen: s.rootGen, id: s.newID()}
	if s.root == nil {
		c.root = s
		s.mu.Lock()
		c.rootGen = s.gen
		s.mu.Unlock()
	}
	// On a closed s, acquire runs c.Close at once: the child is born closed.
	self := s.acquire(c.id, Resource{Name: name}, c.Close)
	c.mu.Lock()
	c.self = self
	c.mu.Unlock()
	return c
}
