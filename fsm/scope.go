package fsm

import (
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

// Ledger is told of every acquisition and release in a machine's scopes, in
// order. The property-test harness uses one to prove that every binding is
// released exactly once, before done, with its acquisition labels.
type Ledger interface {
	Acquired(id uint64, r Resource, in State)
	Released(id uint64, r Resource, in State)
}

// Scope owns bindings and releases each exactly once when it is closed, in
// reverse order of acquisition. A machine's root scope closes on entering
// StateDone; a child scope (Scope.Child) closes when its owner calls Close,
// and at the latest with its parent. A Scope is safe for concurrent use.
type Scope struct {
	m       *Machine // set on a machine's root scope only
	root    *Scope   // the machine's root scope; nil on the root itself
	rootGen uint64   // root.gen when this child was opened

	mu     sync.Mutex
	gen    uint64 // bumped on every reset, so handles from an earlier use are inert
	closed bool
	held   []held
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

func (s *Scope) reset() {
	s.mu.Lock()
	s.gen++
	s.closed = false
	clear(s.held)
	s.held = s.held[:0]
	s.ledger = nil
	s.mu.Unlock()
}

// SetLedger makes l see every acquisition and release in the machine's
// scopes from now on. Only the root scope's ledger is used.
func (m *Machine) SetLedger(l Ledger) {
	m.root.mu.Lock()
	m.root.ledger = l
	m.root.mu.Unlock()
}

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
	id := s.newID()
	l, st := s.observe()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		if l != nil {
			l.Acquired(id, r, st)
		}
		s.runRelease(release)
		if l != nil {
			l.Released(id, r, st)
		}
		return Binding{}
	}
	s.held = append(s.held, held{id: id, res: r, release: release})
	gen := s.gen
	s.mu.Unlock()
	if l != nil {
		l.Acquired(id, r, st)
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
		l.Released(id, res, st)
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
// closed: later acquisitions are released at once. Close is idempotent.
func (s *Scope) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	gen := s.gen
	s.mu.Unlock()
	for {
		s.mu.Lock()
		var id uint64
		if gen == s.gen {
			for i := len(s.held) - 1; i >= 0; i-- {
				if !s.held[i].released {
					id = s.held[i].id
					break
				}
			}
		}
		s.mu.Unlock()
		if id == 0 {
			return
		}
		s.release(gen, id)
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
// bindings; closing s (or reaching done) closes the child if its owner has
// not. The child is itself held by s as a binding.
func (s *Scope) Child(name string) *Scope {
	c := &Scope{root: s.root}
	if s.root == nil {
		c.root = s
	}
	c.root.mu.Lock()
	c.rootGen = c.root.gen
	c.root.mu.Unlock()
	// On a closed s, Acquire runs c.Close at once: the child is born closed.
	s.Acquire(Resource{Name: name}, c.Close)
	return c
}
