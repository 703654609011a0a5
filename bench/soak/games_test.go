package soak

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/phasegate/phasegate/bench/harness"
)

// TestSiteResolvesLikeAFileServer sends every path game straight to the
// site, with no gateway in front: each one meant to reach /admin does, so
// each is a real way around key-auth for an upstream that resolves paths
// itself, and the site records it.
func TestSiteResolvesLikeAFileServer(t *testing.T) {
	s, err := startSite()
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	c := testCall(t, s.addr())
	toAdmin := slices.Concat(secretTargets, aboveRootTargets)
	for _, target := range encodedSlashTargets {
		// Go decodes %2F into the path; a backslash is no separator to it.
		if !strings.Contains(strings.ToLower(target), "%5c") && !strings.Contains(target, `\`) {
			toAdmin = append(toAdmin, target)
		}
	}
	for _, target := range toAdmin {
		if _, err := c.rawSite(target, areaAdmin+" "+pathSecret); err != nil {
			t.Error(err)
		}
	}
	for _, target := range indexTargets {
		if _, err := c.rawSite(target, areaPublic+" "+pathIndex); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.rawSite("/admin/secret.txt?apikey=k", areaAdmin+" "+pathSecret, keyHeader, "k"); err != nil {
		t.Error(err)
	}
	// A wrong answer is an error.
	if _, err := c.rawSite("/elsewhere", areaPublic+" "+pathIndex); err == nil || !strings.Contains(err.Error(), `"other /elsewhere"`) {
		t.Errorf("rawSite to the wrong place: %v", err)
	}

	log := s.log()
	if n := len(toAdmin) + len(indexTargets) + 2; len(log.visits) != n {
		t.Fatalf("%d visits, want %d", len(log.visits), n)
	}
	last := log.visits[len(log.visits)-2]
	if last.id != c.id || last.area != areaAdmin || last.target != "/admin/secret.txt?apikey=k" || !last.key {
		t.Errorf("visit %+v", last)
	}
	if v := log.visits[0]; v.key || v.target != toAdmin[0] {
		t.Errorf("visit %+v", v)
	}
	// Nothing was expected, so the site's checks fail.
	if c := checkAdminUpstream(endState{site: log}); c.OK || !strings.Contains(c.Detail, "came without the consumer's key") {
		t.Errorf("checkAdminUpstream: %+v", c)
	}
}

func TestSiteChecks(t *testing.T) {
	good := siteLog{
		expect: map[string]siteWant{
			"a": {target: "/admin/secret.txt", auth: true},
			"b": {target: "/admin/secret.txt?page=2", auth: true},
			"c": {target: "/public/index.html"},
		},
		visits: []siteVisit{
			{id: "a", target: "/admin/secret.txt", area: areaAdmin},
			{id: "c", target: "/public/index.html", area: areaPublic},
			{id: "b", target: "/admin/secret.txt?page=2", area: areaAdmin},
		},
	}
	if c := checkAdminUpstream(endState{site: good}); !c.OK || !strings.Contains(c.Detail, "2 requests reached the admin area") {
		t.Errorf("checkAdminUpstream: %+v", c)
	}
	if c := checkSiteRequests(endState{site: good}); !c.OK || c.Detail != "3 requests, as expected" {
		t.Errorf("checkSiteRequests: %+v", c)
	}
	if c := checkAdminUpstream(endState{}); c.OK {
		t.Errorf("no request in the admin area passed: %+v", c)
	}

	bad := siteLog{expect: good.expect, visits: []siteVisit{
		{id: "a", target: "/admin/secret.txt", area: areaAdmin},
		{id: "a", target: "/admin/secret.txt", area: areaAdmin},                            // twice
		{id: "c", target: "/public/../admin/secret.txt", area: areaAdmin},                  // a public request in the admin area
		{id: "x", target: "/public/%2e%2e/admin/secret.txt", area: areaAdmin},              // never expected
		{id: "b", target: "/admin/secret.txt?page=2&apikey=k", area: areaAdmin, key: true}, // with the key
	}}
	c := checkAdminUpstream(endState{site: bad})
	for _, want := range []string{"2 of 5", `c "/public/../admin/secret.txt"`, `x "/public/%2e%2e/admin/secret.txt"`} {
		if c.OK || !strings.Contains(c.Detail, want) {
			t.Errorf("checkAdminUpstream: %+v lacks %q", c, want)
		}
	}
	c = checkSiteRequests(endState{site: bad})
	for _, want := range []string{
		"(1 with the key)", "a arrived 2 times", `c arrived as "/public/../admin/secret.txt", want "/public/index.html"`,
		`x "/public/%2e%2e/admin/secret.txt" (admin) never expected`, `b "/admin/secret.txt?page=2&apikey=k" came with the key`,
	} {
		if c.OK || !strings.Contains(c.Detail, want) {
			t.Errorf("checkSiteRequests: %+v lacks %q", c, want)
		}
	}
}

func TestResolve(t *testing.T) {
	for p, want := range map[string][2]string{
		"/admin":               {areaAdmin, "/admin"},
		"/admin/":              {areaAdmin, "/admin"},
		"/public/../admin/x":   {areaAdmin, "/admin/x"},
		"/../../admin/x":       {areaAdmin, "/admin/x"},
		"/administrator":       {areaOther, "/administrator"},
		"/public/./a//b/../c":  {areaPublic, "/public/a/c"},
		"":                     {areaOther, "/"},
		`/public/..\admin/x`:   {areaPublic, `/public/..\admin/x`},
		"/public/../../x/../y": {areaOther, "/y"},
	} {
		if a, c := resolve(p); a != want[0] || c != want[1] {
			t.Errorf("resolve(%q) = %s %s, want %s %s", p, a, c, want[0], want[1])
		}
	}
}

// TestTwoReadings checks that every body read two ways is valid JSON, so
// that its 400 is about its keys and not its syntax, and that its error
// names a key the body holds.
func TestTwoReadings(t *testing.T) {
	for _, tr := range twoReadings {
		if !json.Valid([]byte(tr.body)) {
			t.Errorf("not JSON: %s", tr.body)
		}
		key, _, ok := strings.Cut(tr.msg, ": ")
		if !ok {
			t.Errorf("message %q names no key", tr.msg)
			continue
		}
		// The last key of the path: messages[0].Content, ["meſſages"].
		if i := strings.LastIndexAny(key, `.[`); i >= 0 {
			key = strings.Trim(key[i+1:], `"]`)
		}
		if !strings.Contains(tr.body, `"`+key+`"`) {
			t.Errorf("the body lacks the key %q its message names: %s", key, tr.body)
		}
	}
}

func TestFreshModel(t *testing.T) {
	sent, logged := freshModel("soak-0000042", false)
	if sent != "soak-model-soak-0000042" || logged != sent {
		t.Errorf("short: %q, %q", sent, logged)
	}
	sent, logged = freshModel("soak-0000042", true)
	switch {
	case len(logged) != logModelBytes-1 || !strings.HasPrefix(sent, logged) || !strings.HasPrefix(logged, "soak-model-soak-0000042-"):
		t.Errorf("long: logged %d bytes %q of %q", len(logged), logged, sent)
	case !utf8.ValidString(sent) || utf8.RuneStart(sent[logModelBytes]) || !utf8.RuneStart(sent[logModelBytes-1]):
		// The byte at the cut continues the character begun before it.
		t.Errorf("long: no two-byte character across the cut: %q", sent[logModelBytes-4:logModelBytes+4])
	}
}

func TestCheckModelLabels(t *testing.T) {
	metrics := func(models int, route string, other bool) harness.Metrics {
		var b strings.Builder
		b.WriteString("# TYPE phasegate_llm_active_connections gauge\n")
		b.WriteString(`phasegate_llm_active_connections{instance="ai-proxy",model="gpt-4o-mini",request_type="ai_chat",route="chat"} 0` + "\n")
		b.WriteString("# TYPE phasegate_llm_request_duration_seconds histogram\n")
		write := func(model string) {
			for _, le := range []string{"0.1", "+Inf"} {
				b.WriteString(`phasegate_llm_request_duration_seconds_bucket{instance="ai-proxy",model="` + model + `",request_type="ai_chat",route="` + route + `",le="` + le + `"} 1` + "\n")
			}
			b.WriteString(`phasegate_llm_request_duration_seconds_sum{instance="ai-proxy",model="` + model + `",request_type="ai_chat",route="` + route + `"} 0.1` + "\n")
			b.WriteString(`phasegate_llm_request_duration_seconds_count{instance="ai-proxy",model="` + model + `",request_type="ai_chat",route="` + route + `"} 1` + "\n")
		}
		for i := range models {
			write(strings.Repeat("m", i+1))
		}
		if other {
			write(modelOther)
		}
		m, err := harness.ParseMetrics(strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	if c := checkModelLabels(endState{final: metrics(maxModelsPerRoute, modelsRoute, true)}); !c.OK || !strings.Contains(c.Detail, "chat 1, guard 9") {
		t.Errorf("within the limit: %+v", c)
	}
	if c := checkModelLabels(endState{final: metrics(maxModelsPerRoute+1, modelsRoute, true)}); c.OK || !strings.Contains(c.Detail, `phasegate_llm_request_duration_seconds{route="guard"}: 10`) {
		t.Errorf("over the limit: %+v", c)
	}
	if c := checkModelLabels(endState{final: metrics(3, modelsRoute, false)}); c.OK || !strings.Contains(c.Detail, "never recorded") {
		t.Errorf("without other: %+v", c)
	}
	if c := checkModelLabels(endState{final: metrics(3, routeMulti, true)}); c.OK {
		t.Errorf("other on another route: %+v", c)
	}
	if c := checkModelLabels(endState{final: harness.Metrics{}}); c.OK {
		t.Errorf("no LLM metric: %+v", c)
	}
}

func TestLogWant(t *testing.T) {
	l := logLine{Path: "/admin/secret.txt", Model: "m", ExitPlugin: "key-auth", Consumer: "soak", UpstreamMs: 0.4}
	if p := (logWant{}).problems(l); len(p) != 0 {
		t.Errorf("the zero logWant checks something: %q", p)
	}
	if p := (logWant{path: "/admin/secret.txt", model: "m", exitPlugin: "key-auth", consumer: "soak"}).problems(l); len(p) != 0 {
		t.Errorf("equal fields: %q", p)
	}
	p := (logWant{path: "/public/index.html", model: "n", exitPlugin: "router", consumer: "other", noUpstream: true}).problems(l)
	want := []string{
		`path "/admin/secret.txt", want "/public/index.html"`, `model "m", want "n"`, `exit_plugin "key-auth", want "router"`,
		`consumer "soak", want "other"`, "upstream_ms 0.4, want 0 (no upstream call)",
	}
	if !slices.Equal(p, want) {
		t.Errorf("problems =\n%q\nwant\n%q", p, want)
	}
	// The protocols; with no upstream call, no provider_protocol either.
	door := logLine{ClientProtocol: protoMessages, ProviderProtocol: protoChat}
	if p := (logWant{client: protoMessages, provider: protoChat}).problems(door); len(p) != 0 {
		t.Errorf("equal protocols: %q", p)
	}
	p = (logWant{client: protoResponses, noUpstream: true}).problems(door)
	if want := []string{`client_protocol "anthropic-messages", want "openai-responses"`, `provider_protocol "openai-chat", want none (no upstream call)`}; !slices.Equal(p, want) {
		t.Errorf("problems =\n%q\nwant\n%q", p, want)
	}
	// Long values show where they part.
	sent, logged := freshModel("soak-7", true)
	p = (logWant{model: logged}).problems(logLine{Model: sent})
	if want := `model of 266 bytes, want 255, parting at byte 255: "é-and-more", want ""`; len(p) != 1 || p[0] != want {
		t.Errorf("problems = %q, want %q", p, want)
	}

	al, err := parseLog(strings.NewReader(`{"level":"info","request_id":"soak-1","route":"admin","status":401,"cause":"exit","path":"/admin/secret.txt","exit_plugin":"key-auth","upstream_ms":0,"message":"access"}
{"level":"info","request_id":"soak-2","route":"guard","status":200,"cause":"completed","model":"soak-model-x","upstream_ms":1.5,"message":"access"}`))
	if err != nil {
		t.Fatal(err)
	}
	noKey, models := scenarioIndex("path_admin_no_key"), scenarioIndex("many_models")
	recs := []record{
		{id: "soak-1", scenario: noKey, code: http.StatusUnauthorized, want: scenarios[noKey].want},
		{id: "soak-2", scenario: models, code: http.StatusOK, want: logWant{model: "soak-model-x"}},
	}
	if p := al.match(recs); p.nFields != 0 || len(p.ids) != 0 {
		t.Errorf("match: %+v", p)
	}
	recs[1].want.model = "soak-model-y"
	if p := al.match(recs); p.nFields != 1 || !strings.Contains(p.fields[0], `soak-2 (many_models): model "soak-model-x", want "soak-model-y"`) {
		t.Errorf("match with a wrong model: %+v", p)
	}
}
