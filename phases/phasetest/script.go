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
)

var kindNames = [...]string{"continue", "exit", "panic", "cancel", "mutate", "transform"}

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
	// Acquire makes the plugin hold a gauge binding from its access hook on.
	Acquire bool
	Access  Action
	Header  Action
	// Body[i] is the action for the i-th body filter call (the last call is
	// the end of the body); calls beyond the list continue.
	Body []Action
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
}

// ClientScript scripts the client.
type ClientScript struct {
	// FailHeader makes the client vanish when the response header is written.
	FailHeader bool
	// FailWrite, when ≥ 0, makes the client vanish at the FailWrite-th body write.
	FailWrite int
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
		if p.Access.Kind != Continue {
			fmt.Fprintf(&b, " access=%s", p.Access)
		}
		if p.Header.Kind != Continue {
			fmt.Fprintf(&b, " header=%s", p.Header)
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
	b.WriteByte('\n')
	b.WriteString("client")
	if s.Client.FailHeader {
		b.WriteString(" fail-header")
	}
	if s.Client.FailWrite >= 0 {
		fmt.Fprintf(&b, " fail-write=%d", s.Client.FailWrite)
	}
	if s.Client.StallBody {
		b.WriteString(" stall-body")
	}
	if s.Client.TimeoutWrite >= 0 {
		fmt.Fprintf(&b, " timeout-write=%d", s.Client.TimeoutWrite)
	}
	if !s.Client.FailHeader && s.Client.FailWrite < 0 && !s.Client.StallBody && s.Client.TimeoutWrite < 0 {
		b.WriteString(" stays")
	}
	b.WriteByte('\n')
	return b.String()
}

// Parse reads a scenario in the syntax String writes:
//
//	plugin auth priority=10 acquire access=exit:401 header=continue body=continue,exit:500
//	upstream ok status=200 chunks=3 sse break-at=2
//	client fail-write=1 stall-body timeout-write=2
//
// Lines may come in any order; "upstream" defaults to "ok status=200
// chunks=1" and "client" to "stays".
func Parse(text string) (Scenario, error) {
	s := Scenario{
		Upstream: UpstreamScript{Kind: UpstreamOK, Status: 200, Chunks: 1, BreakAt: -1},
		Client:   ClientScript{FailWrite: -1, TimeoutWrite: -1},
	}
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(format string, a ...any) (Scenario, error) {
			return Scenario{}, fmt.Errorf("line %d: %s", n+1, fmt.Sprintf(format, a...))
		}
		switch f[0] {
		case "plugin":
			if len(f) < 2 {
				return bad("plugin needs a name")
			}
			p := PluginScript{Name: f[1]}
			for _, kv := range f[2:] {
				k, v, _ := strings.Cut(kv, "=")
				var err error
				switch k {
				case "priority":
					p.Priority, err = strconv.Atoi(v)
				case "acquire":
					p.Acquire = true
				case "access":
					p.Access, err = parseAction(v)
				case "header":
					p.Header, err = parseAction(v)
				case "body":
					for _, a := range strings.Split(v, ",") {
						var act Action
						if act, err = parseAction(a); err != nil {
							break
						}
						p.Body = append(p.Body, act)
					}
				default:
					err = fmt.Errorf("unknown plugin field %q", k)
				}
				if err != nil {
					return bad("%v", err)
				}
			}
			s.Others = append(s.Others, p)
		case "upstream":
			if len(f) < 2 {
				return bad("upstream needs a kind")
			}
			u := UpstreamScript{Status: 200, Chunks: 1, BreakAt: -1, Kind: -1}
			for i, name := range upstreamNames {
				if name == f[1] {
					u.Kind = UpstreamKind(i)
				}
			}
			if u.Kind < 0 {
				return bad("unknown upstream kind %q", f[1])
			}
			for _, kv := range f[2:] {
				k, v, _ := strings.Cut(kv, "=")
				var err error
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
				default:
					err = fmt.Errorf("unknown upstream field %q", k)
				}
				if err != nil {
					return bad("%v", err)
				}
			}
			s.Upstream = u
		case "client":
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				var err error
				switch k {
				case "stays":
				case "fail-header":
					s.Client.FailHeader = true
				case "fail-write":
					s.Client.FailWrite, err = strconv.Atoi(v)
				case "stall-body":
					s.Client.StallBody = true
				case "timeout-write":
					s.Client.TimeoutWrite, err = strconv.Atoi(v)
				default:
					err = fmt.Errorf("unknown client field %q", k)
				}
				if err != nil {
					return bad("%v", err)
				}
			}
		default:
			return bad("unknown line %q", f[0])
		}
	}
	return s, nil
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
