package phasetest

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a scripted hook does.
type Kind int

// Scripted hook behaviours.
const (
	// Continue does nothing.
	Continue Kind = iota
	// Exit returns an exit with Action.Status.
	Exit
	// Panic panics.
	Panic
	// Cancel cancels the client's context (the client leaves) and continues.
	Cancel
	// Mutate changes every request header value, the path and the body, then
	// continues: plugins that read request state late see different values.
	Mutate
	// Transform replaces the body chunk (body filters only).
	Transform
	// Wedge wedges the request's machine, as a cancelled context wedges a
	// looplab instance, then continues: the runner's safety net must finish
	// the request.
	Wedge
	// Hold holds the body chunk back, as a buffering filter does (body
	// filters only).
	Hold
)

var kindNames = [...]string{"continue", "exit", "panic", "cancel", "mutate", "transform", "wedge", "hold"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Action is one scripted hook's behaviour.
type Action struct {
	Kind   Kind
	Status int // for Exit
}

func (a Action) String() string {
	if a.Kind == Exit {
		return "exit:" + strconv.Itoa(a.Status)
	}
	return a.Kind.String()
}

// PluginScript scripts one of the plugins the harness places around the
// plugins under test. It implements every phase.
type PluginScript struct {
	Name     string
	Priority int
	// Acquire makes the plugin hold a gauge binding from its access hook on,
	// acquired with a label slice that the plugin overwrites right after.
	Acquire bool
	// PanicRelease makes the plugin also hold a binding whose release
	// panics (after doing its work).
	PanicRelease bool
	Access       Action
	Header       Action
	// Body[i] is the action for the i-th body filter call (the last call is
	// the end of the body); calls beyond the list continue.
	Body []Action
	// Log is the log hook's action: continue, panic or wedge.
	Log Action
}

// UpstreamKind is how the scripted upstream answers.
type UpstreamKind int

// Scripted upstream outcomes.
const (
	// UpstreamOK answers with Status and Chunks body chunks.
	UpstreamOK UpstreamKind = iota
	// UpstreamRefused fails like an unreachable upstream (502).
	UpstreamRefused
	// UpstreamTimeout fails like a timed-out upstream (504).
	UpstreamTimeout
	// UpstreamPanic panics in the upstream call.
	UpstreamPanic
	// UpstreamHang is slow: the client gives up (its context is cancelled)
	// while the upstream is still working.
	UpstreamHang
)

var upstreamNames = [...]string{"ok", "refused", "timeout", "panic", "hang"}

func (k UpstreamKind) String() string { return upstreamNames[k] }

// Refused, as a failed attempt's status, is an attempt that failed by a
// network error.
const Refused = 0

// UpstreamScript scripts the upstream when the plugins under test do not
// provide one.
type UpstreamScript struct {
	Kind   UpstreamKind
	Status int
	Chunks int
	SSE    bool
	// BreakAt, when ≥ 0, makes the body fail (a reset) instead of yielding
	// chunk BreakAt; PanicBody makes it panic there instead.
	BreakAt   int
	PanicBody bool
	// Failed are attempts made before the one that answers as Kind says,
	// each failing by a network error (Refused) or an error status read
	// whole. Every attempt holds a gauge in its own child scope
	// (AttemptScope), which must end before the next attempt starts.
	Failed []int
}

// ClientScript scripts the client.
type ClientScript struct {
	// FailHeader makes the client vanish when the response header is written.
	FailHeader bool
	// FailWrite, when ≥ 0, makes the client vanish at the FailWrite-th body write.
	FailWrite int
	// PanicHeader makes the sink panic when the header is first written, and
	// PanicWrite, when ≥ 0, at the PanicWrite-th body write: a panic that
	// escapes every hook wrapper, into the runner's safety net.
	PanicHeader bool
	PanicWrite  int
	// StallBody makes the client's request body stall: after its first
	// byte, every read fails on its deadline, as client.body_timeout makes
	// it.
	StallBody bool
	// TimeoutWrite, when ≥ 0, makes the TimeoutWrite-th body write fail on
	// its send deadline: the client stopped reading.
	TimeoutWrite int
}

// Scenario is one generated path: the scripted plugins around the plugins
// under test, the upstream and the client.
type Scenario struct {
	Others   []PluginScript
	Upstream UpstreamScript
	Client   ClientScript
}

// String renders the scenario in the transcript syntax Parse reads.
func (s Scenario) String() string {
	var b strings.Builder
	for _, p := range s.Others {
		fmt.Fprintf(&b, "plugin %s priority=%d", p.Name, p.Priority)
		if p.Acquire {
			b.WriteString(" acquire")
		}
		if p.PanicRelease {
			b.WriteString(" release=panic")
		}
		for _, f := range []struct {
			key string
			a   Action
		}{{"access", p.Access}, {"header", p.Header}, {"log", p.Log}} {
			if f.a.Kind != Continue {
				fmt.Fprintf(&b, " %s=%s", f.key, f.a)
			}
		}
		if len(p.Body) > 0 {
			parts := make([]string, len(p.Body))
			for i, a := range p.Body {
				parts[i] = a.String()
			}
			fmt.Fprintf(&b, " body=%s", strings.Join(parts, ","))
		}
		b.WriteByte('\n')
	}
	u := s.Upstream
	fmt.Fprintf(&b, "upstream %s", u.Kind)
	if u.Kind == UpstreamOK {
		fmt.Fprintf(&b, " status=%d chunks=%d", u.Status, u.Chunks)
		if u.SSE {
			b.WriteString(" sse")
		}
		if u.BreakAt >= 0 {
			if u.PanicBody {
				fmt.Fprintf(&b, " panic-at=%d", u.BreakAt)
			} else {
				fmt.Fprintf(&b, " break-at=%d", u.BreakAt)
			}
		}
	}
	if len(u.Failed) > 0 {
		parts := make([]string, len(u.Failed))
		for i, f := range u.Failed {
			parts[i] = "refused"
			if f != Refused {
				parts[i] = strconv.Itoa(f)
			}
		}
		fmt.Fprintf(&b, " failed=%s", strings.Join(parts, ","))
	}
	b.WriteByte('\n')
	c := s.Client
	b.WriteString("client")
	before := b.Len()
	flag := func(on bool, name string) {
		if on {
			b.WriteString(" " + name)
		}
	}
	at := func(n int, name string) { // -1: never
		if n >= 0 {
			fmt.Fprintf(&b, " %s=%d", name, n)
		}
	}
	flag(c.FailHeader, "fail-header")
	at(c.FailWrite, "fail-write")
	flag(c.PanicHeader, "panic-header")
	at(c.PanicWrite, "panic-write")
	flag(c.StallBody, "stall-body")
	at(c.TimeoutWrite, "timeout-write")
	if b.Len() == before {
		b.WriteString(" stays")
	}
	b.WriteByte('\n')
	return b.String()
}

// Parse reads a scenario in the syntax String writes:
//
//	plugin auth priority=10 acquire release=panic access=exit:401 header=wedge body=continue,exit:500 log=panic
//	upstream ok status=200 chunks=3 sse break-at=2 failed=refused,503
//	client fail-write=1 panic-header stall-body timeout-write=2
//
// Lines may come in any order; "upstream" defaults to "ok status=200
// chunks=1" and "client" to "stays".
func Parse(text string) (Scenario, error) {
	s := Scenario{
		Upstream: UpstreamScript{Kind: UpstreamOK, Status: 200, Chunks: 1, BreakAt: -1},
		Client:   ClientScript{FailWrite: -1, PanicWrite: -1, TimeoutWrite: -1},
	}
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		var err error
		switch f[0] {
		case "plugin":
			var p PluginScript
			p, err = parsePlugin(f[1:])
			s.Others = append(s.Others, p)
		case "upstream":
			s.Upstream, err = parseUpstream(f[1:])
		case "client":
			err = parseClient(&s.Client, f[1:])
		default:
			err = fmt.Errorf("unknown line %q", f[0])
		}
		if err != nil {
			return Scenario{}, fmt.Errorf("line %d: %w", n+1, err)
		}
	}
	return s, nil
}

// eachField calls set with each key=value field of fields (the value is
// empty for a bare key), stopping at the first error.
func eachField(fields []string, set func(k, v string) error) error {
	for _, kv := range fields {
		k, v, _ := strings.Cut(kv, "=")
		if err := set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// parseList parses each comma-separated item of v with parse.
func parseList[T any](v string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, item := range strings.Split(v, ",") {
		x, err := parse(item)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

func parsePlugin(f []string) (PluginScript, error) {
	if len(f) == 0 {
		return PluginScript{}, fmt.Errorf("plugin needs a name")
	}
	p := PluginScript{Name: f[0]}
	err := eachField(f[1:], func(k, v string) (err error) {
		switch k {
		case "priority":
			p.Priority, err = strconv.Atoi(v)
		case "acquire":
			p.Acquire = true
		case "release":
			if v != "panic" {
				err = fmt.Errorf("release can only be %q", "panic")
			}
			p.PanicRelease = true
		case "access":
			p.Access, err = parseAction(v)
		case "header":
			p.Header, err = parseAction(v)
		case "log":
			p.Log, err = parseAction(v)
		case "body":
			p.Body, err = parseList(v, parseAction)
		default:
			err = fmt.Errorf("unknown plugin field %q", k)
		}
		return err
	})
	return p, err
}

func parseUpstream(f []string) (UpstreamScript, error) {
	if len(f) == 0 {
		return UpstreamScript{}, fmt.Errorf("upstream needs a kind")
	}
	u := UpstreamScript{Status: 200, Chunks: 1, BreakAt: -1, Kind: -1}
	for i, name := range upstreamNames {
		if name == f[0] {
			u.Kind = UpstreamKind(i)
		}
	}
	if u.Kind < 0 {
		return UpstreamScript{}, fmt.Errorf("unknown upstream kind %q", f[0])
	}
	err := eachField(f[1:], func(k, v string) (err error) {
		switch k {
		case "status":
			u.Status, err = strconv.Atoi(v)
		case "chunks":
			u.Chunks, err = strconv.Atoi(v)
		case "sse":
			u.SSE = true
		case "break-at":
			u.BreakAt, err = strconv.Atoi(v)
		case "panic-at":
			u.BreakAt, err = strconv.Atoi(v)
			u.PanicBody = true
		case "failed":
			u.Failed, err = parseList(v, parseFailed)
		default:
			err = fmt.Errorf("unknown upstream field %q", k)
		}
		return err
	})
	return u, err
}

// parseFailed reads a failed attempt: "refused" or an error status.
func parseFailed(a string) (int, error) {
	if a == "refused" {
		return Refused, nil
	}
	if status, err := strconv.Atoi(a); err == nil && status >= 400 && status <= 599 {
		return status, nil
	}
	return 0, fmt.Errorf("a failed attempt is %q or an error status, not %q", "refused", a)
}

func parseClient(c *ClientScript, f []string) error {
	return eachField(f, func(k, v string) (err error) {
		switch k {
		case "stays":
		case "fail-header":
			c.FailHeader = true
		case "fail-write":
			c.FailWrite, err = strconv.Atoi(v)
		case "panic-header":
			c.PanicHeader = true
		case "panic-write":
			c.PanicWrite, err = strconv.Atoi(v)
		case "stall-body":
			c.StallBody = true
		case "timeout-write":
			c.TimeoutWrite, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown client field %q", k)
		}
		return err
	})
}

func parseAction(s string) (Action, error) {
	name, status, hasStatus := strings.Cut(s, ":")
	for i, k := range kindNames {
		if k == name {
			a := Action{Kind: Kind(i)}
			if a.Kind == Exit {
				if !hasStatus {
					return Action{}, fmt.Errorf("exit needs a status (exit:403)")
				}
				n, err := strconv.Atoi(status)
				if err != nil || n < 100 || n > 599 {
					return Action{}, fmt.Errorf("bad exit status %q", status)
				}
				a.Status = n
			}
			return a, nil
		}
	}
	return Action{}, fmt.Errorf("unknown action %q", s)
}
