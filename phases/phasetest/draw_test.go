package phasetest_test

import (
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/phases/phasetest"
)

type at100 struct{}

func (at100) Name() string  { return "under-test" }
func (at100) Priority() int { return 100 }

// seen counts what the drawn scenarios contain.
type seen map[string]int

// Drawn scenarios are well formed and read back from their own text
// (String, then Parse), and over a run they reach every behaviour the
// harness has, the rare ones rarely.
func TestPropertyDrawnScenarios(t *testing.T) {
	counts := seen{}
	n := 0
	rapid.Check(t, func(t *rapid.T) {
		for range 10 {
			s := phasetest.Draw(t, []phases.Plugin{at100{}}, 0)
			n++
			checkScenario(t, s, counts)
			text := s.String()
			back, err := phasetest.Parse(text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", text, err)
			}
			if back.String() != text || !reflect.DeepEqual(normal(back), normal(s)) {
				t.Fatalf("the scenario does not read back:\n%s\n%#v\n%#v", text, s, back)
			}
		}
	})
	for _, what := range []string{
		"priority -1048576", "priority 99", "priority 100", "priority 101", "priority 1048576",
		"access continue", "access exit", "access panic", "access cancel", "access mutate", "access wedge",
		"header continue", "header exit", "header panic", "header cancel", "header wedge",
		"body continue", "body exit", "body panic", "body cancel", "body transform", "body wedge", "body hold",
		"log continue", "log panic", "log wedge",
		"upstream ok", "upstream refused", "upstream timeout", "upstream panic", "upstream hang",
		"sse", "no break", "break at 0", "break later", "panic at 0",
		"failed refused", "failed status", "acquire", "release panics",
		"client stays", "fail header", "fail write", "panic header", "panic write",
	} {
		if counts[what] == 0 {
			t.Errorf("%d scenarios, none with %s", n, what)
		}
	}
	for _, what := range []string{"access wedge", "body hold", "release panics", "fail header", "fail write", "panic header", "panic write", "panic at", "upstream panic", "failed refused", "log panic"} {
		if counts[what]*3 > n {
			t.Errorf("%d scenarios, %d with %s: a rare behaviour is common", n, counts[what], what)
		}
	}
}

// checkScenario checks one scenario and counts what it contains.
func checkScenario(t *rapid.T, s phasetest.Scenario, c seen) {
	prios := []int{-1 << 20, 99, 100, 101, 1 << 20}
	for i, p := range s.Others {
		if want := "p" + string(rune('1'+i)); p.Name != want {
			t.Fatalf("plugin %d is named %q, want %q", i, p.Name, want)
		}
		if !slices.Contains(prios, p.Priority) {
			t.Fatalf("priority %d is not around the plugins' %v", p.Priority, prios)
		}
		c[fmtPriority(p.Priority)]++
		checkAction(t, p.Access, "access", []phasetest.Kind{phasetest.Continue, phasetest.Exit, phasetest.Panic, phasetest.Cancel, phasetest.Mutate, phasetest.Wedge}, c)
		checkAction(t, p.Header, "header", []phasetest.Kind{phasetest.Continue, phasetest.Exit, phasetest.Panic, phasetest.Cancel, phasetest.Wedge}, c)
		for _, a := range p.Body {
			checkAction(t, a, "body", []phasetest.Kind{phasetest.Continue, phasetest.Exit, phasetest.Panic, phasetest.Cancel, phasetest.Transform, phasetest.Wedge, phasetest.Hold}, c)
		}
		checkAction(t, p.Log, "log", []phasetest.Kind{phasetest.Continue, phasetest.Panic, phasetest.Wedge}, c)
		if p.Acquire {
			c["acquire"]++
		}
		if p.PanicRelease {
			c["release panics"]++
		}
	}
	u := s.Upstream
	c["upstream "+u.Kind.String()]++
	switch {
	case u.BreakAt < -1 || u.BreakAt > u.Chunks || u.Chunks < 0 || u.Chunks > 4:
		t.Fatalf("break at %d of %d chunks", u.BreakAt, u.Chunks)
	case u.PanicBody && u.BreakAt < 0:
		t.Fatal("a body panic without a place to panic")
	case !slices.Contains([]int{200, 201, 404, 429, 500, 503}, u.Status):
		t.Fatalf("status %d", u.Status)
	case u.BreakAt == -1:
		c["no break"]++
	case u.BreakAt == 0:
		c["break at 0"]++
	default:
		c["break later"]++
	}
	if u.PanicBody {
		c["panic at"]++
		if u.BreakAt == 0 {
			c["panic at 0"]++
		}
	}
	if u.SSE {
		c["sse"]++
	}
	for _, f := range u.Failed {
		switch f {
		case phasetest.Refused:
			c["failed refused"]++
		case 429, 500, 503:
			c["failed status"]++
		default:
			t.Fatalf("a failed attempt answers %d", f)
		}
	}
	cl := s.Client
	if cl.FailWrite < -1 || cl.FailWrite > 5 || cl.PanicWrite < -1 || cl.PanicWrite > 4 {
		t.Fatalf("client %+v", cl)
	}
	for what, on := range map[string]bool{
		"client stays": !cl.FailHeader && cl.FailWrite < 0 && !cl.PanicHeader && cl.PanicWrite < 0,
		"fail header":  cl.FailHeader, "fail write": cl.FailWrite >= 0,
		"panic header": cl.PanicHeader, "panic write": cl.PanicWrite >= 0,
	} {
		if on {
			c[what]++
		}
	}
}

func checkAction(t *rapid.T, a phasetest.Action, phase string, kinds []phasetest.Kind, c seen) {
	if !slices.Contains(kinds, a.Kind) {
		t.Fatalf("a %s hook may not %s", phase, a.Kind)
	}
	if (a.Kind == phasetest.Exit) != (a.Status != 0) || a.Kind == phasetest.Exit && (a.Status < 400 || a.Status > 503) {
		t.Fatalf("%s action %s with status %d", phase, a.Kind, a.Status)
	}
	c[phase+" "+a.Kind.String()]++
}

func fmtPriority(p int) string { return "priority " + itoa(p) }

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// normal makes a drawn scenario what its text says: empty lists nil, and
// no answer's details on an upstream that does not answer.
func normal(s phasetest.Scenario) phasetest.Scenario {
	for i := range s.Others {
		if len(s.Others[i].Body) == 0 {
			s.Others[i].Body = nil
		}
	}
	if len(s.Others) == 0 {
		s.Others = nil
	}
	if len(s.Upstream.Failed) == 0 {
		s.Upstream.Failed = nil
	}
	if u := &s.Upstream; u.Kind != phasetest.UpstreamOK {
		// Only an answer has a status and a body; Parse's defaults stand.
		u.Status, u.Chunks, u.SSE, u.BreakAt, u.PanicBody = 200, 1, false, -1, false
	}
	return s
}
