package soak

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// logLine is the part of a phasegate JSON log line the soak reads.
type logLine struct {
	Level     string `json:"level"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
	Route     string `json:"route"`
	Status    int    `json:"status"`
	Cause     string `json:"cause"`

	Path       string  `json:"path"`
	Model      string  `json:"model"`
	ExitPlugin string  `json:"exit_plugin"`
	UpstreamMs float64 `json:"upstream_ms"`
	Consumer   string  `json:"consumer"`

	ClientProtocol   string `json:"client_protocol"`
	ProviderProtocol string `json:"provider_protocol"`
}

// logWant is what one request's access-log line must show beyond its
// scenario's route, status and cause; a zero field is not checked.
type logWant struct {
	path       string // the canonical path
	model      string // the model sent, as the log cuts it
	exitPlugin string // the plugin whose exit answered
	consumer   string // the key-auth consumer
	client     string // client_protocol: the door's protocol
	provider   string // provider_protocol: the serving instance's protocol
	noUpstream bool   // upstream_ms is 0 and provider_protocol empty: no upstream was called
}

// problems lists how l differs from w.
func (w logWant) problems(l logLine) []string {
	var out []string
	for _, f := range []struct{ name, got, want string }{
		{"path", l.Path, w.path}, {"model", l.Model, w.model},
		{"exit_plugin", l.ExitPlugin, w.exitPlugin}, {"consumer", l.Consumer, w.consumer},
		{"client_protocol", l.ClientProtocol, w.client}, {"provider_protocol", l.ProviderProtocol, w.provider},
	} {
		if f.want != "" && f.got != f.want {
			out = append(out, f.name+" "+differ(f.got, f.want))
		}
	}
	if w.noUpstream && l.UpstreamMs != 0 {
		out = append(out, fmt.Sprintf("upstream_ms %g, want 0 (no upstream call)", l.UpstreamMs))
	}
	if w.noUpstream && l.ProviderProtocol != "" {
		out = append(out, fmt.Sprintf("provider_protocol %q, want none (no upstream call)", l.ProviderProtocol))
	}
	return out
}

// accessLog summarises phasegate's log after a run.
type accessLog struct {
	lines    int                  // "access" lines
	byID     map[string][]logLine // access lines by request id
	causes   map[string]int       // access lines by cause
	aborts   map[routeCause]int   // access lines of aborted requests
	served   map[doorKey]int      // access lines with a provider_protocol
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
	al := &accessLog{byID: map[string][]logLine{}, causes: map[string]int{}, aborts: map[routeCause]int{}, served: map[doorKey]int{}, levels: map[string]int{}}
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
			if l.ProviderProtocol != "" {
				al.served[doorKey{l.Route, l.ClientProtocol, l.ProviderProtocol}]++
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

// differ shows two strings that differ: whole when short, else their
// lengths and where they part.
func differ(got, want string) string {
	const short = 80
	if len(got) <= short && len(want) <= short {
		return fmt.Sprintf("%q, want %q", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("of %d bytes, want %d, parting at byte %d: %.24q, want %.24q", len(got), len(want), i, got[i:], want[i:])
}

// match compares the access log with the records of the requests sent:
// every id exactly once, none unknown, each line's route, status and cause
// as its scenario expects, and the rest as the record wants.
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
		var diff []string
		if l.Route != sc.route || l.Status != r.code || !slices.Contains(sc.causes, l.Cause) {
			diff = append(diff, fmt.Sprintf("route %q status %d cause %s, want route %q status %d cause %v",
				l.Route, l.Status, l.Cause, sc.route, r.code, sc.causes))
		}
		diff = append(diff, r.want.problems(l)...)
		if len(diff) > 0 {
			p.nFields++
			if len(p.fields) < 8 {
				p.fields = append(p.fields, fmt.Sprintf("%s (%s): %s", r.id, sc.name, strings.Join(diff, "; ")))
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
