package soak

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// logLine is the part of a phasegate JSON log line the soak reads.
type logLine struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	Cause     string `json:"cause"`
}

// accessLog summarises phasegate's log after a run.
type accessLog struct {
	lines    int                  // "access" lines
	byID     map[string][]logLine // access lines by request id
	causes   map[string]int       // access lines by cause
	aborts   map[routeCause]int   // access lines of aborted requests
	levels   map[string]int       // all lines by level
	reloaded int                  // "config reloaded"
	rejected int                  // "reload rejected; ..."
	panics   int                  // "recovered panic"
	stopped  bool                 // "phasegate stopped"
}

func readAccessLog(path string) (*accessLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseLog(f)
}

// parseLog reads phasegate's JSON log lines.
func parseLog(r io.Reader) (*accessLog, error) {
	al := &accessLog{byID: map[string][]logLine{}, causes: map[string]int{}, aborts: map[routeCause]int{}, levels: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d is not JSON: %v: %.120q", n, err, sc.Bytes())
		}
		al.levels[l.Level]++
		switch l.Message {
		case "access":
			al.lines++
			al.byID[l.RequestID] = append(al.byID[l.RequestID], l)
			al.causes[l.Cause]++
			if slices.Contains(abortCauses, l.Cause) {
				al.aborts[routeCause{l.Route, l.Cause}]++
			}
		case "config reloaded":
			al.reloaded++
		case "reload rejected; the previous config keeps serving":
			al.rejected++
		case "recovered panic":
			al.panics++
		case "phasegate stopped":
			al.stopped = true
		}
	}
	return al, sc.Err()
}

// routeCause is an aborted request's route and cause.
type routeCause struct{ Route, Cause string }

func (rc routeCause) String() string { return fmt.Sprintf("{route=%q,cause=%q}", rc.Route, rc.Cause) }

// sortedRouteCauses returns the keys of a and b, sorted.
func sortedRouteCauses(a map[routeCause]float64, b map[routeCause]int) []routeCause {
	var keys []routeCause
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(x, y routeCause) int { return cmp.Or(cmp.Compare(x.Route, y.Route), cmp.Compare(x.Cause, y.Cause)) })
	return keys
}

// logProblems are the differences between the access log and the
// requests sent.
type logProblems struct {
	ids     []string // ids missing, repeated or unknown (each a description)
	fields  []string // first few lines whose route, status or cause differ
	nFields int
}

// match compares the access log with the records of the requests sent:
// every id exactly once, none unknown, and each line's route, status and
// cause as its scenario expects.
func (al *accessLog) match(recs []record) logProblems {
	var p logProblems
	sent := make(map[string]bool, len(recs))
	for _, r := range recs {
		sent[r.id] = true
		ls := al.byID[r.id]
		switch len(ls) {
		case 0:
			p.ids = append(p.ids, r.id+" ("+scenarios[r.scenario].name+") missing")
			continue
		case 1:
		default:
			p.ids = append(p.ids, fmt.Sprintf("%s (%s) logged %d times", r.id, scenarios[r.scenario].name, len(ls)))
		}
		sc := scenarios[r.scenario]
		l := ls[0]
		causeOK := slices.Contains(sc.causes, l.Cause)
		if l.Route != sc.route || l.Status != r.code || !causeOK {
			p.nFields++
			if len(p.fields) < 8 {
				p.fields = append(p.fields, fmt.Sprintf("%s (%s): route %q status %d cause %s, want route %q status %d cause %v",
					r.id, sc.name, l.Route, l.Status, l.Cause, sc.route, r.code, sc.causes))
			}
		}
	}
	for _, id := range sortedKeys(al.byID) {
		if !sent[id] {
			p.ids = append(p.ids, fmt.Sprintf("%q logged but never sent", id))
		}
	}
	return p
}
