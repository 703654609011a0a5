package fsm

import (
	lfsm "github.com/looplab/fsm"
)

// Format names a diagram syntax for Diagram.
type Format string

// Diagram formats.
const (
	FormatMermaid Format = "mermaid"
	FormatDOT     Format = "dot"
)

// Diagram renders the lifecycle from the machine's own definition (the same
// table every request runs on), so documentation cannot drift from code. The
// output is deterministic.
func Diagram(f Format) (string, bool) {
	lf := lfsm.NewFSM(string(StateNew), lfEvents, nil)
	switch f {
	case FormatMermaid:
		s, err := lfsm.VisualizeWithType(lf, lfsm.MermaidStateDiagram)
		// looplab draws the entry ([*] --> new); add the exits: every state
		// the table never leaves is terminal.
		for _, st := range allStates {
			if terminal(st) {
				s += "    " + string(st) + " --> [*]\n"
			}
		}
		return s, err == nil
	case FormatDOT:
		s, err := lfsm.VisualizeWithType(lf, lfsm.GRAPHVIZ)
		return s, err == nil
	}
	return "", false
}

func terminal(s State) bool {
	for _, t := range table {
		if t.From == s {
			return false
		}
	}
	return true
}
