package soak

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/bench/harness"
)

// TestSoak is the short soak of `make test`: the real binary, every
// scenario, the mid-run reload and every end-of-run check, for 5 seconds
// at 16 concurrent clients. `go run ./bench/soak/cmd/soak` is the long one.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs the phasegate binary for several seconds; skipped with -short")
	}
	defer goleak.VerifyNone(t)
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{
		Duration:    5 * time.Second,
		Concurrency: 16,
		Progress:    &progress,
	})
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())
	for _, c := range rep.Failed() {
		t.Errorf("%s: %s", c.Name, c.Detail)
	}
	// The short run must still have exercised every scenario.
	for _, s := range rep.Scenarios {
		if s.Runs == 0 {
			t.Errorf("scenario %s never ran", s.Name)
		}
	}
}

func TestCompareTally(t *testing.T) {
	tally := Tally{}
	for range 7 {
		tally.Add("chat", 200)
	}
	tally.Add("chat", 499)
	other := Tally{}
	for range 3 {
		other.Add("", 404)
	}
	tally.Merge(other)
	if tally.Total() != 11 {
		t.Fatalf("Total() = %d, want 11", tally.Total())
	}
	server := map[RouteCode]float64{{"chat", "200"}: 7, {"chat", "499"}: 1, {"", "404"}: 3, {"plain", "200"}: 0}
	if mm := CompareTally(tally, server); len(mm) != 0 {
		t.Errorf("equal counts (and a 0 series no client produced) reported as %v", mm)
	}

	server[RouteCode{"chat", "499"}] = 0     // the server missed one
	server[RouteCode{"chat", "502"}] = 1     // and recorded one no client saw
	server[RouteCode{"", "404"}] = 4         // and counted one twice
	delete(server, RouteCode{"chat", "200"}) // and lost a series
	mm := CompareTally(tally, server)
	var got []string
	for _, m := range mm {
		got = append(got, m.String())
	}
	want := []string{
		`{route="",code="404"} clients 3, server 4`,
		`{route="chat",code="200"} clients 7, server 0`,
		`{route="chat",code="499"} clients 1, server 0`,
		`{route="chat",code="502"} clients 0, server 1`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("CompareTally =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStreamChecks(t *testing.T) {
	chunk := func(content string) string {
		return `{"object":"chat.completion.chunk","choices":[{"delta":{"content":"` + content + `"}}]}`
	}
	text, err := streamText([]string{chunk("Hello "), chunk("world"), `{"object":"chat.completion.chunk","choices":[]}`, harness.Done})
	if err != nil || text != "Hello world" {
		t.Errorf("streamText = %q, %v", text, err)
	}
	for name, evs := range map[string][]string{
		"no [DONE]":     {chunk("a")},
		"early [DONE]":  {harness.Done, chunk("a"), harness.Done},
		"error event":   {`{"error":{"message":"upstream timed out","type":"timeout"}}`, harness.Done},
		"not JSON":      {"nope", harness.Done},
		"wrong object":  {`{"object":"chat.completion"}`, harness.Done},
		"empty":         nil,
		"only [DONE]s":  {harness.Done, harness.Done},
		"chunk missing": {chunk("a"), "", harness.Done},
	} {
		if _, err := streamText(evs); err == nil {
			t.Errorf("%s: streamText accepted %q", name, evs)
		}
	}
	fin, err := finalFrame([]string{chunk("a"), `{"error":{"message":"m","type":"timeout"}}`, harness.Done})
	if err != nil || fin.Error == nil || fin.Error.Type != "timeout" {
		t.Errorf("finalFrame = %+v, %v", fin, err)
	}
	if _, err := finalFrame([]string{harness.Done}); err == nil {
		t.Error("finalFrame accepted a stream without a final frame")
	}
}

func TestCheckRefusal(t *testing.T) {
	completion := `{"object":"chat.completion","choices":[{"message":{"content":"` + denyMessages[1] + `"}}]}`
	if err := checkRefusal([]byte(completion), false); err != nil {
		t.Error(err)
	}
	stream := "data: " + `{"object":"chat.completion.chunk","choices":[{"delta":{"content":"` + denyMessages[0] + `"}}]}` + "\n\ndata: [DONE]\n\n"
	if err := checkRefusal([]byte(stream), true); err != nil {
		t.Error(err)
	}
	other := strings.Replace(completion, denyMessages[1], "Sure, here is how", 1)
	if err := checkRefusal([]byte(other), false); err == nil {
		t.Error("a completion that is no refusal passed")
	}
}

func TestParseLogAndMatch(t *testing.T) {
	log := strings.Join([]string{
		`{"level":"info","listen":"127.0.0.1:1","admin":"127.0.0.1:2","message":"phasegate serving"}`,
		`{"level":"info","request_id":"soak-1","route":"plain","status":200,"cause":"completed","message":"access"}`,
		`{"level":"info","request_id":"soak-2","route":"chat","status":499,"cause":"client_closed","message":"access"}`,
		`{"level":"info","request_id":"soak-3","route":"chat","status":200,"cause":"completed","message":"access"}`,
		`{"level":"info","request_id":"soak-3","route":"chat","status":200,"cause":"completed","message":"access"}`,
		`{"level":"info","request_id":"stranger","route":"","status":404,"cause":"exit","message":"access"}`,
		`{"level":"info","message":"config reloaded"}`,
		`{"level":"error","message":"reload rejected; the previous config keeps serving"}`,
		`{"level":"info","message":"phasegate stopped"}`,
	}, "\n")
	al, err := parseLog(strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	if al.lines != 5 || al.reloaded != 1 || al.rejected != 1 || !al.stopped || al.causes["completed"] != 3 || al.levels["error"] != 1 {
		t.Errorf("parseLog: %+v", al)
	}
	plain, dbh, okStream := scenarioIndex("plain_ok"), scenarioIndex("disconnect_before_headers"), scenarioIndex("ai_stream_ok")
	p := al.match([]record{
		{id: "soak-1", scenario: plain, code: 200},
		{id: "soak-2", scenario: dbh, code: 499},
		{id: "soak-3", scenario: okStream, code: 200},
		{id: "soak-4", scenario: plain, code: 200},
	})
	wantIDs := []string{"soak-3 (ai_stream_ok) logged 2 times", "soak-4 (plain_ok) missing", `"stranger" logged but never sent`}
	if !slices.Equal(p.ids, wantIDs) || p.nFields != 0 {
		t.Errorf("match: ids %q, fields %q", p.ids, p.fields)
	}
	// A wrong status or cause is a field problem.
	p = al.match([]record{{id: "soak-1", scenario: plain, code: 404}, {id: "soak-2", scenario: plain, code: 499}})
	if p.nFields != 2 {
		t.Errorf("match: %d field problems, want 2: %q", p.nFields, p.fields)
	}
	al, _ = parseLog(strings.NewReader(`{"level":"info","request_id":"soak-9","route":"plainchat","status":200,"cause":"upstream_error","message":"access"}`))
	ps := scenarioIndex("plain_stream")
	if p := al.match([]record{{id: "soak-9", scenario: ps, code: 200}}); p.nFields != 1 {
		t.Error("upstream_error accepted for a plain stream")
	}
	if _, err := parseLog(strings.NewReader("not json\n")); err == nil {
		t.Error("a line that is not JSON parsed")
	}
}

func TestCountConns(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:A34B 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:1F90 0100007F:A34B 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:A34C 0100007F:1F90 06 00000000:00000000 00:00000000 00000000     0        0 4 1
   4: 0100007F:A34D 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 5 1
`
	if n := countConns(table, 0x1F90); n != 2 {
		t.Errorf("countConns = %d, want 2 (established, remote port 8080)", n)
	}
	r := reading{goroutines: 16, pooled: 2}
	if r.own() != 10 {
		t.Errorf("own() = %v, want 10", r.own())
	}
	if r := (reading{goroutines: 16, pooled: -1}); r.own() != 16 {
		t.Errorf("own() with unknown pool = %v, want 16", r.own())
	}
}

func TestPicker(t *testing.T) {
	nBase := len(ordinaryScenarios)
	base, hostile := newPicker(scenarios, 0, nBase), newPicker(scenarios, nBase, len(scenarios))
	rng := rand.New(rand.NewPCG(1, 2))
	seen := make([]int, len(scenarios))
	for range 20000 {
		seen[base.pick(rng, false)]++
		seen[hostile.pick(rng, false)]++
	}
	for i, sc := range scenarios {
		if sc.afterReload && seen[i] > 0 {
			t.Errorf("%s picked before the reload", sc.name)
		}
		if !sc.afterReload && seen[i] == 0 {
			t.Errorf("%s never picked", sc.name)
		}
	}
	for range 20000 {
		if i := base.pick(rng, true); i >= nBase {
			t.Fatalf("the ordinary clients' picker chose %s", scenarios[i].name)
		}
		if i := hostile.pick(rng, true); i < nBase {
			t.Fatalf("the hostile clients' picker chose %s", scenarios[i].name)
		}
	}
	reloaded := scenarioIndex("plain_reloaded_route")
	n := 0
	for range 20000 {
		if base.pick(rng, true) == reloaded {
			n++
		}
	}
	if n == 0 {
		t.Error("the reloaded route is never picked after the reload")
	}
	for n, want := range map[int]int{1: 0, 2: 1, 16: 2, 64: 8} {
		if got := hostileClients(n); got != want {
			t.Errorf("hostileClients(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestConfigs(t *testing.T) {
	p := configParams{Mock: "127.0.0.1:1234", Dead: "127.0.0.1:5678", Site: "127.0.0.1:4321", Version: 1}
	render := func(p configParams) string {
		b, err := soakConfig(p).Render()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	v1 := render(p)
	p.Version = 2
	v2 := render(p)
	p.Invalid = true
	bad := render(p)
	for name, c := range map[string]struct {
		cfg       string
		want, not []string
	}{
		"v1": {v1, []string{
			denyMessages[0], "http://127.0.0.1:5678/v1/chat/completions", "timeout: " + aiTimeout.String(), "version 1",
			"id: " + routeAdmin, "uri: /admin/*", "key-auth: {}", "id: " + routePublic, "uri: /public/*", `127.0.0.1:4321: 1`,
			"username: " + consumerName, "key: " + consumerKey, fmt.Sprintf("max_models_per_route: %d", maxModelsPerRoute),
			"id: " + routeMessages, "uri: " + pathMessages, "client_protocol: " + protoMessages, "provider: anthropic", "http://127.0.0.1:1234/v1/messages",
			"id: " + routeMessagesChat, "uri: " + pathMessagesChat, "id: " + routeResponses, "uri: " + pathResponses, "client_protocol: " + protoResponses,
		}, []string{"id: " + routeReloaded, "(unclosed"}},
		"v2":      {v2, []string{denyMessages[1], "id: " + routeReloaded, "id: " + routeAdmin, "key: " + consumerKey}, []string{"(unclosed"}},
		"invalid": {bad, []string{"(unclosed"}, nil},
	} {
		for _, s := range c.want {
			if !strings.Contains(c.cfg, s) {
				t.Errorf("%s config lacks %q:\n%s", name, s, c.cfg)
			}
		}
		for _, s := range c.not {
			if strings.Contains(c.cfg, s) {
				t.Errorf("%s config has %q", name, s)
			}
		}
	}
}

func TestReport(t *testing.T) {
	rep := &Report{Duration: time.Second, Concurrency: 2, Tally: Tally{}}
	if rep.OK() {
		t.Error("a report without checks is OK")
	}
	rep.check("one", true, "fine")
	if !rep.OK() {
		t.Error("a report whose checks pass is not OK")
	}
	rep.check("two", false, "broken")
	var b bytes.Buffer
	rep.Print(&b)
	for _, s := range []string{"OK    one: fine", "FAIL  two: broken", "FAIL (1 of 2 checks)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
	if rep.OK() || len(rep.Failed()) != 1 {
		t.Error("a report with a failed check is OK")
	}
}
