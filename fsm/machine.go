package fsm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	lfsm "github.com/looplab/fsm"

	"github.com/phasegate/phasegate/fsm/testhook"
)

// maxSteps bounds a trace: the longest path through the table is
// start, next, next, next, next, finish.
const maxSteps = 6

// ErrReentrant is returned by Fire when it is called while the same machine
// is already firing (from an Observer, or from a release function run on
// entering done). looplab would deadlock or run the nested event inside the
// outer one; phasegate refuses instead.
var ErrReentrant = errors.New("fsm: Fire called while the machine is firing")

// ErrStuck is returned by Fire when the underlying looplab instance refuses
// events (it reports a transition in progress). ForceDone finishes
// such a machine.
var ErrStuck = errors.New("fsm: machine is stuck in a transition")

// TransitionError is returned by Fire for an event the current state does not
// accept.
type TransitionError struct {
	Event Event
	State State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("fsm: event %q is not allowed in state %q", e.Event, e.State)
}

// Observer is told of every state a machine enters, after looplab has
// completed the transition and outside any looplab callback. It is where the
// framework does its entry accounting (for example acquiring the
// active-requests gauge on entering access). A panic in Entered is recovered
// and reported to Recovered, and never leaves the machine half-moved.
type Observer interface {
	Entered(m *Machine, s Step)
}

// Machine is the state machine of one request. It is not safe for concurrent
// use by several goroutines (a request is driven by one goroutine); its Scope
// is.
type Machine struct {
	lf *lfsm.FSM

	steps  [maxSteps]Step
	nsteps int

	cur      State // mirrors looplab's current state after every Fire
	firing   bool
	stuck    bool
	forced   bool
	observer Observer

	root Scope

	// Recovered receives panics recovered from the Observer ("observer") and
	// from release functions ("release"), and an *UnsettledError when a
	// scope's Close leaves a binding held ("close"). Nil means they are
	// dropped after recovery.
	Recovered func(where string, v any)
}

// looplab definition shared by all instances: NewFSM only reads it.
var lfEvents = func() lfsm.Events {
	evs := make(lfsm.Events, 0, len(table))
	for _, t := range table {
		evs = append(evs, lfsm.EventDesc{Name: string(t.Event), Src: []string{string(t.From)}, Dst: string(t.To)})
	}
	return evs
}()

// newLooplab returns the looplab instance of one machine. It registers no
// callbacks: no code of ours runs inside looplab (a panic there bricks the
// instance, a re-entrant call deadlocks), and with an empty callback map
// looplab skips the eight hashed lookups it makes per event. Fire reads the
// state looplab reached once Event has returned, and runs the entry
// accounting (Observer, closing the root scope) from there.
func newLooplab() *lfsm.FSM {
	return lfsm.NewFSM(string(StateNew), lfEvents, nil)
}

func newMachine() *Machine {
	m := &Machine{cur: StateNew}
	m.lf = newLooplab()
	m.root.m = m
	return m
}

var pool = sync.Pool{New: func() any { return newMachine() }}

// New returns a machine in StateNew whose observer is obs (which may be nil).
// Machines are pooled: call Release once the request is done with it.
func New(obs Observer) *Machine {
	return pool.Get().(*Machine).reuse(obs)
}

// reuse readies a machine from the pool (reset by retire) for a request. A
// pooled instance is only put back in StateDone; looplab must agree that it
// has been reset before it is trusted (see the notes on pooling), else a
// fresh machine is used.
func (m *Machine) reuse(obs Observer) *Machine {
	m.lf.SetState(string(StateNew))
	if !m.lf.Can(string(EventStart)) {
		m = newMachine()
	}
	m.observer = obs
	return m
}

// Release returns the machine to the pool. It must be the last use of m and of
// anything obtained from it; Bindings still held become inert (their Release
// is a no-op). A machine that is not in StateDone, or that was stuck, is not
// reused.
func (m *Machine) Release() {
	if m.retire() {
		pool.Put(m)
	}
}

// retire resets a finished machine for its next use and reports whether it
// may be reused at all.
func (m *Machine) retire() bool {
	if m.State() != StateDone || m.stuck || m.forced || m.firing {
		return false
	}
	m.root.reset()
	m.cur = StateNew
	m.nsteps = 0
	m.observer = nil
	m.Recovered = nil
	return true
}

// State returns the current state.
func (m *Machine) State() State {
	if m.forced {
		return StateDone
	}
	return m.cur
}

// Can reports whether ev is allowed now.
func (m *Machine) Can(ev Event) bool {
	_, ok := Target(m.State(), ev)
	return ok && !m.stuck && !m.firing
}

// Trace returns the steps taken so far. The slice aliases the machine and is
// valid until Release.
func (m *Machine) Trace() []Step { return m.steps[:m.nsteps] }

// Path is Path(m.Trace()).
func (m *Machine) Path() string { return Path(m.Trace()) }

// Forced reports whether ForceDone had to finish this machine.
func (m *Machine) Forced() bool { return m.forced }

// Scope returns the request's root scope. It is closed, releasing every
// binding still held, when the machine enters StateDone.
func (m *Machine) Scope() *Scope { return &m.root }

// Fire moves the machine by ev. It never hands a cancellable context to
// looplab (a cancelled context would brick the instance): the caller turns a
// cancelled request into EventAbort itself.
func (m *Machine) Fire(ev Event) error {
	if m.firing {
		return ErrReentrant
	}
	if m.stuck || m.forced {
		return ErrStuck
	}
	from := m.State()
	to, ok := Target(from, ev)
	if !ok {
		return &TransitionError{Event: ev, State: from}
	}
	m.firing = true
	err := m.lf.Event(context.Background(), string(ev))
	if err == nil && State(m.lf.Current()) != to {
		err = fmt.Errorf("looplab moved to %q, the table says %q", m.lf.Current(), to)
	}
	if err != nil {
		m.firing = false
		var inTransition lfsm.InTransitionError
		if errors.As(err, &inTransition) {
			m.stuck = true
			return ErrStuck
		}
		return fmt.Errorf("fsm: %s in %s: %w", ev, from, err)
	}
	step := Step{Event: ev, From: from, To: to}
	m.cur = to
	m.record(step)
	m.afterEnter(step)
	m.firing = false
	return nil
}

func (m *Machine) record(s Step) {
	if m.nsteps < maxSteps {
		m.steps[m.nsteps] = s
		m.nsteps++
	}
}

// afterEnter runs the framework's entry accounting outside looplab: the
// observer, and on entering done the release of every binding.
func (m *Machine) afterEnter(s Step) {
	if m.observer != nil {
		m.guard("observer", func() { m.observer.Entered(m, s) })
	}
	if s.To == StateDone {
		m.root.Close()
	}
}

func (m *Machine) guard(where string, fn func()) {
	defer func() {
		if v := recover(); v != nil && m.Recovered != nil {
			m.Recovered(where, v)
		}
	}()
	fn()
}

// ForceDone is the safety net of a driver's deferred cleanup: it brings the
// machine to StateDone by the legal route when it can (EventAbort or EventExit
// to log, then EventFinish) and, when looplab refuses (stuck instance, a
// re-entrant call, a panic that escaped mid-transition), records a forced
// step and closes the root scope itself. Either way every binding is released
// exactly once. It returns true when the machine had to be forced.
func (m *Machine) ForceDone() bool {
	if m.State() == StateDone {
		return false
	}
	m.firing = false
	if m.State() == StateNew {
		_ = m.Fire(EventStart)
	}
	if m.State().Live() {
		_ = m.Fire(EventAbort)
	}
	if m.State() == StateLog {
		_ = m.Fire(EventFinish)
	}
	if m.State() == StateDone {
		return false
	}
	from := m.State()
	m.forced = true
	m.record(Step{Event: EventFinish, From: from, To: StateDone})
	m.root.Close()
	return true
}

// wedge leaves m's looplab instance mid-transition, the way a cancelled
// context does (docs/lifecycle.md): looplab refuses every later event, so
// Fire returns ErrStuck. It is the testing hook testhook.WedgeMachine and
// reports whether there was an event left to wedge on.
func (m *Machine) wedge() bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, ev := range allEvents {
		if m.lf.Can(string(ev)) {
			return m.lf.Event(ctx, string(ev)) != nil
		}
	}
	return false
}

func init() {
	testhook.WedgeMachine = func(scope any) bool {
		s, ok := scope.(*Scope)
		if !ok || s == nil {
			return false
		}
		m, same := s.machine()
		return same && m.wedge()
	}
}
