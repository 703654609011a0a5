package fsm

import "strings"

// State is a phase of the request lifecycle.
type State string

// The lifecycle's states, in the order a request that runs to completion
// visits them.
const (
	StateNew          State = "new"
	StateAccess       State = "access"
	StateUpstream     State = "upstream"
	StateHeaderFilter State = "header_filter"
	StateBodyFilter   State = "body_filter"
	StateLog          State = "log"
	StateDone         State = "done"
)

// Event moves the machine from one state to another.
type Event string

// The lifecycle's events. Only the framework fires them; a plugin's single
// means of control is returning an exit, which the framework turns into
// EventExit.
const (
	// EventStart moves a new request into access.
	EventStart Event = "start"
	// EventNext moves a request to the following phase.
	EventNext Event = "next"
	// EventExit ends the request side early (a plugin's exit, an upstream
	// failure, a recovered panic) or ends the response early.
	EventExit Event = "exit"
	// EventAbort moves a request whose client is gone straight to log.
	EventAbort Event = "abort"
	// EventFinish ends the request after its log phase.
	EventFinish Event = "finish"
)

// Transition is one row of the transition table.
type Transition struct {
	Event Event
	From  State
	To    State
}

// table is the lifecycle. The machine, the diagram, the documentation and the
// property tests are all derived from it.
var table = [...]Transition{
	{EventStart, StateNew, StateAccess},

	{EventNext, StateAccess, StateUpstream},
	{EventNext, StateUpstream, StateHeaderFilter},
	{EventNext, StateHeaderFilter, StateBodyFilter},
	{EventNext, StateBodyFilter, StateLog},

	{EventExit, StateAccess, StateHeaderFilter},
	{EventExit, StateUpstream, StateHeaderFilter},
	{EventExit, StateHeaderFilter, StateBodyFilter},
	{EventExit, StateBodyFilter, StateLog},

	{EventAbort, StateAccess, StateLog},
	{EventAbort, StateUpstream, StateLog},
	{EventAbort, StateHeaderFilter, StateLog},
	{EventAbort, StateBodyFilter, StateLog},

	{EventFinish, StateLog, StateDone},
}

var (
	allStates = [...]State{StateNew, StateAccess, StateUpstream, StateHeaderFilter, StateBodyFilter, StateLog, StateDone}
	allEvents = [...]Event{EventStart, EventNext, EventExit, EventAbort, EventFinish}
)

// Table returns a copy of the transition table.
func Table() []Transition { return append([]Transition(nil), table[:]...) }

// States returns every state in lifecycle order.
func States() []State { return append([]State(nil), allStates[:]...) }

// Events returns every event.
func Events() []Event { return append([]Event(nil), allEvents[:]...) }

// Target returns the state that ev leads to from s, and whether the table
// allows ev in s at all.
func Target(s State, ev Event) (State, bool) {
	si, ei := s.index(), ev.index()
	if si < 0 || ei < 0 {
		return "", false
	}
	to := targets[si][ei]
	return to, to != ""
}

// targets is the table indexed by [state][event], built from table.
var targets = func() (t [len(allStates)][len(allEvents)]State) {
	for _, tr := range table {
		t[tr.From.index()][tr.Event.index()] = tr.To
	}
	return t
}()

func (s State) index() int {
	switch s {
	case StateNew:
		return 0
	case StateAccess:
		return 1
	case StateUpstream:
		return 2
	case StateHeaderFilter:
		return 3
	case StateBodyFilter:
		return 4
	case StateLog:
		return 5
	case StateDone:
		return 6
	}
	return -1
}

func (e Event) index() int {
	switch e {
	case EventStart:
		return 0
	case EventNext:
		return 1
	case EventExit:
		return 2
	case EventAbort:
		return 3
	case EventFinish:
		return 4
	}
	return -1
}

// RequestSide reports whether s is a phase that works on the request before
// a response exists (access, upstream).
func (s State) RequestSide() bool { return s == StateAccess || s == StateUpstream }

// ResponseSide reports whether s is a phase that works on a response whose
// headers may still be unsent (header_filter, body_filter).
func (s State) ResponseSide() bool { return s == StateHeaderFilter || s == StateBodyFilter }

// Live reports whether a request in s has not yet reached log.
func (s State) Live() bool { return s.RequestSide() || s.ResponseSide() }

// Step is one transition a machine took.
type Step struct {
	Event Event
	From  State
	To    State
}

// String renders a step as "from -event-> to".
func (s Step) String() string { return string(s.From) + " -" + string(s.Event) + "-> " + string(s.To) }

// Path renders the states a trace entered, joined by ">". Written from the
// log phase it is the access log's lifecycle field, for example
// "access>upstream>header_filter>body_filter>log".
func Path(steps []Step) string {
	if k, ok := pathKey(steps); ok {
		if p, ok := paths[k]; ok {
			return p
		}
	}
	return renderPath(steps)
}

func renderPath(steps []Step) string {
	var b strings.Builder
	for i, s := range steps {
		if i > 0 {
			b.WriteByte('>')
		}
		b.WriteString(string(s.To))
	}
	return b.String()
}

// pathKey packs the states a trace entered into a key of paths: three
// bits per state, after a leading 1.
func pathKey(steps []Step) (uint32, bool) {
	if len(steps) > maxSteps {
		return 0, false
	}
	k := uint32(1)
	for _, s := range steps {
		i := s.To.index()
		if i < 0 {
			return 0, false
		}
		k = k<<3 | uint32(i)
	}
	return k, true
}

// paths holds the rendering of every path the table allows, read-only
// after init, so that the access log's lifecycle field costs no string
// per request.
var paths = func() map[uint32]string {
	m := map[uint32]string{}
	var walk func(from State, steps []Step)
	walk = func(from State, steps []Step) {
		k, _ := pathKey(steps)
		m[k] = renderPath(steps)
		if len(steps) == maxSteps {
			return
		}
		for _, t := range table {
			if t.From == from {
				walk(t.To, append(steps[:len(steps):len(steps)], Step(t)))
			}
		}
	}
	walk(StateNew, nil)
	return m
}()
