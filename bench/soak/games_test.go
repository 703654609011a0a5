package soak

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
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
	// Long values show where they part.
	long := strings.Repeat("x", 100)
	p = (logWant{model: long}).problems(logLine{Model: long + "é-and-more"})
	if want := `model of 111 bytes, want 100, parting at byte 100: "é-and-more", want ""`; len(p) != 1 || p[0] != want {
		t.Errorf("problems = %q, want %q", p, want)
	}

	al, err := parseLog(strings.NewReader(`{"level":"info","request_id":"soak-1","route":"admin","status":401,"cause":"exit","path":"/admin/secret.txt","exit_plugin":"key-auth","upstream_ms":0,"message":"access"}
{"level":"info","request_id":"soak-2","route":"admin","status":200,"cause":"completed","path":"/admin/secret.txt","consumer":"soak","upstream_ms":1.5,"message":"access"}`))
	if err != nil {
		t.Fatal(err)
	}
	noKey, key := scenarioIndex("path_admin_no_key"), scenarioIndex("path_admin_key")
	recs := []record{
		{id: "soak-1", scenario: noKey, code: http.StatusUnauthorized, want: scenarios[noKey].want},
		{id: "soak-2", scenario: key, code: http.StatusOK, want: scenarios[key].want},
	}
	if p := al.match(recs); p.nFields != 0 || len(p.ids) != 0 {
		t.Errorf("match: %+v", p)
	}
	recs[1].want.noUpstream = true
	if p := al.match(recs); p.nFields != 1 || !strings.Contains(p.fields[0], `soak-2 (path_admin_key): upstream_ms 1.5, want 0`) {
		t.Errorf("match with an upstream call: %+v", p)
	}
}
