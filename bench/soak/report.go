package soak

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a soak run.
type Report struct {
	Duration    time.Duration // the load's configured duration
	LoadTime    time.Duration // how long the load actually ran
	Concurrency int
	Hostile     int // of the concurrent clients, those playing hostile ones
	Seed        uint64
	Binary      string
	WorkDir     string // set when kept (a failing run), for its log

	Requests       int // sent, warm-up included
	WarmUpRequests int
	LoadRequests   int
	Scenarios      []ScenarioCount
	Stall          StallResult // many bodies stalled at once, before the baseline
	Tally          Tally
	Causes         map[string]int // access-log lines by cause
	LogLevels      map[string]int // log lines by level
	Samples        []string       // a few unexpected responses
	PeakActive     float64        // highest phasegate_http_active_requests total seen during the load
	PeakLLM        float64        // highest phasegate_llm_active_connections total

	BaselineGoroutines, EndGoroutines float64
	BaselinePooled, EndPooled         int // idle phasegate→mock connections (-1: unknown)
	BaselineRSS, EndRSS               float64

	Checks []Check
	Stderr string // phasegate's stderr, if any
}

// ScenarioCount is how often a scenario ran.
type ScenarioCount struct {
	Name       string
	Route      string
	Code       int // the status phasegate records for it
	Runs       int
	Requests   int // requests phasegate counted and logged
	Unexpected int // runs
}

// Check is one pass/fail verdict of the run.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

func (r *Report) check(name string, ok bool, detail string) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: detail})
}

// OK reports whether every check passed (false for a report without
// checks).
func (r *Report) OK() bool {
	if r == nil || len(r.Checks) == 0 {
		return false
	}
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return true
}

// Failed returns the checks that failed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "phasegate soak: %s at %d concurrent clients (%d hostile), seed %d\n", r.Duration, r.Concurrency, r.Hostile, r.Seed)
	fmt.Fprintf(w, "binary: %s\n\n", r.Binary)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\troute\tcode\truns\trequests\tunexpected\t")
	runs, unexpected := 0, 0
	for _, s := range r.Scenarios {
		route, code := s.Route, fmt.Sprint(s.Code)
		switch {
		case s.Code == 0:
			route, code = "—", "—"
		case route == "":
			route = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t\n", s.Name, route, code, s.Runs, s.Requests, s.Unexpected)
		runs += s.Runs
		unexpected += s.Unexpected
	}
	fmt.Fprintf(tw, "total\t\t\t%d\t%d\t%d\t\n", runs, r.Requests, unexpected)
	tw.Flush()
	if r.LoadTime > 0 {
		fmt.Fprintf(w, "(%d warm-up requests, then %d in %s: %.0f requests/s; peak in flight: %g requests, %g LLM connections)\n",
			r.WarmUpRequests, r.LoadRequests, r.LoadTime.Round(time.Millisecond), float64(r.LoadRequests)/r.LoadTime.Seconds(), r.PeakActive, r.PeakLLM)
	}

	fmt.Fprintf(w, "\nphasegate_http_requests_total as the clients tallied it: %s\n", r.tallyLine())
	fmt.Fprintf(w, "access-log causes: %s\n", countLine(r.Causes))
	fmt.Fprintf(w, "log lines by level: %s\n", countLine(r.LogLevels))
	if len(r.Samples) > 0 {
		fmt.Fprintln(w, "\nunexpected responses (first few):")
		for _, s := range r.Samples {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}
	if r.Stderr != "" {
		fmt.Fprintf(w, "\nphasegate stderr:\n%s\n", r.Stderr)
	}

	fmt.Fprintln(w, "\nchecks:")
	for _, c := range r.Checks {
		verdict := "OK  "
		if !c.OK {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", verdict, c.Name, c.Detail)
	}
	if r.WorkDir != "" {
		fmt.Fprintf(w, "\nconfig and phasegate log kept in %s\n", r.WorkDir)
	}
	if r.OK() {
		fmt.Fprintln(w, "\nPASS")
	} else {
		fmt.Fprintf(w, "\nFAIL (%d of %d checks)\n", len(r.Failed()), len(r.Checks))
	}
}

func (r *Report) tallyLine() string {
	keys := make([]RouteCode, 0, len(r.Tally))
	for k := range r.Tally {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Route != keys[j].Route {
			return keys[i].Route < keys[j].Route
		}
		return keys[i].Code < keys[j].Code
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		route := k.Route
		if route == "" {
			route = `""`
		}
		parts[i] = fmt.Sprintf("%s/%s %d", route, k.Code, r.Tally[k])
	}
	return strings.Join(parts, ", ")
}

// countLine prints counts, largest first.
func countLine(m map[string]int) string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
