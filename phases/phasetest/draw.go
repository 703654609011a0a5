package phasetest

import (
	"fmt"
	"sort"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/phases"
)

// Draw draws a scenario around plugins: scripted plugins whose priorities
// fall before, between and after theirs, an upstream outcome (unless one of
// plugins is the upstream) and a client. Every draw shrinks towards
// "nothing goes wrong".
func Draw(t *rapid.T, plugins []phases.Plugin, maxOthers int) Scenario {
	if maxOthers <= 0 {
		maxOthers = 3
	}
	prios := []int{-1 << 20, 1 << 20}
	for _, p := range plugins {
		q := 0
		if pr, ok := p.(phases.Prioritized); ok {
			q = pr.Priority()
		}
		prios = append(prios, q-1, q, q+1)
	}
	sort.Ints(prios)
	var s Scenario
	// A slice generator lets rapid shrink by deleting any one plugin.
	s.Others = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) PluginScript {
		p := PluginScript{
			Priority: rapid.SampledFrom(prios).Draw(t, "priority"),
			Acquire:  rapid.Bool().Draw(t, "acquire"),
			Access:   drawAction(t, "access", true, false),
			Header:   drawAction(t, "header", false, false),
		}
		p.PanicRelease = rapid.IntRange(0, 7).Draw(t, "release panics") == 7
		p.Body = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) Action { return drawAction(t, "body", false, true) }), 0, 4).Draw(t, "body actions")
		// continue, panic, wedge
		p.Log = Action{Kind: []Kind{Continue, Wedge, Panic}[weighted(t, "log", []int{90, 4, 6})]}
		return p
	}), 0, maxOthers).Draw(t, "others")
	for i := range s.Others {
		s.Others[i].Name = fmt.Sprintf("p%d", i+1)
	}
	var u UpstreamScript
	u.Kind = UpstreamKind(weighted(t, "upstream", []int{70, 8, 8, 6, 8}))
	u.Status = rapid.SampledFrom([]int{200, 200, 201, 404, 429, 500, 503}).Draw(t, "status")
	u.Chunks = rapid.IntRange(0, 4).Draw(t, "chunks")
	u.SSE = rapid.Bool().Draw(t, "sse")
	u.BreakAt = rapid.IntRange(0, u.Chunks+1).Draw(t, "break at") - 1
	if u.BreakAt >= 0 {
		u.PanicBody = rapid.IntRange(0, 3).Draw(t, "panic body") == 3
	}
	for range weighted(t, "failed attempts", []int{80, 12, 8}) {
		u.Failed = append(u.Failed, rapid.SampledFrom([]int{Refused, 429, 500, 503}).Draw(t, "failed attempt"))
	}
	s.Upstream = u
	s.Client = ClientScript{
		FailHeader:  rapid.IntRange(0, 9).Draw(t, "fail header") == 9,
		FailWrite:   -1,
		PanicHeader: rapid.IntRange(0, 19).Draw(t, "panic header") == 19,
		PanicWrite:  -1,

		TimeoutWrite: -1,
	}
	if rapid.IntRange(0, 3).Draw(t, "client leaves mid-body") == 3 {
		s.Client.FailWrite = rapid.IntRange(0, 5).Draw(t, "fail write")
	}
	if rapid.IntRange(0, 9).Draw(t, "sink panics mid-body") == 9 {
		s.Client.PanicWrite = rapid.IntRange(0, 4).Draw(t, "panic write")
	}
	s.Client.StallBody = rapid.IntRange(0, 9).Draw(t, "client stalls its body") == 9
	if rapid.IntRange(0, 5).Draw(t, "client stops reading") == 5 {
		s.Client.TimeoutWrite = rapid.IntRange(0, 5).Draw(t, "timeout write")
	}
	return s
}

// weighted draws an index with the given weights; shrinking goes to 0.
func weighted(t *rapid.T, label string, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := rapid.IntRange(0, total-1).Draw(t, label)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

func drawAction(t *rapid.T, label string, access, body bool) Action {
	// A rare wedge is drawn on its own: rapid favours the ends of a range,
	// and the last kind of the weighted draw below is the mutation (access)
	// or transformation (body) that label-rereading bugs need.
	if rapid.IntRange(0, 29).Draw(t, label+" wedges") == 29 {
		return Action{Kind: Wedge}
	}
	if body && rapid.IntRange(0, 9).Draw(t, label+" holds") == 9 {
		return Action{Kind: Hold}
	}
	// continue, exit, panic, cancel, mutate, transform
	w := []int{60, 14, 8, 8, 0, 0}
	if access {
		w[Mutate] = 10
	}
	if body {
		w[Transform] = 10
	}
	k := Kind(weighted(t, label, w))
	a := Action{Kind: k}
	if k == Exit {
		a.Status = rapid.SampledFrom([]int{400, 401, 403, 429, 500, 503}).Draw(t, label+" status")
	}
	return a
}
