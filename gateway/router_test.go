package gateway

import (
	"strings"
	"testing"
)

func testRouter(routes ...*route) *router {
	for i, r := range routes {
		r.order = i
		if p, ok := strings.CutSuffix(r.exact, "*"); ok {
			r.prefix, r.exact = p, ""
		}
	}
	return newRouter(routes)
}

// The documented precedence: hosts before any-host, exact before prefix,
// longer prefix before shorter, then config order; a route that does not
// allow the method is passed over.
func TestRouterPrecedence(t *testing.T) {
	rt := testRouter(
		&route{id: "catch-all", exact: "/*"},
		&route{id: "api", exact: "/api/*"},
		&route{id: "api-v1", exact: "/api/v1/*"},
		&route{id: "chat", exact: "/api/v1/chat", methods: []string{"POST"}},
		&route{id: "chat-again", exact: "/api/v1/chat"}, // later in the file: never wins
		&route{id: "tenant", exact: "/api/*", hosts: []string{"tenant.example.com"}},
		&route{id: "wild", exact: "/*", hosts: []string{"*.example.org"}},
		&route{id: "get-only", exact: "/report", methods: []string{"GET"}},
	)
	for _, tc := range []struct {
		method, host, path string
		want               string
		allowed            string
	}{
		{"POST", "x", "/api/v1/chat", "chat", ""},
		{"GET", "x", "/api/v1/chat", "chat-again", ""}, // chat does not allow GET; the next exact route does
		{"GET", "x", "/api/v1/models", "api-v1", ""},
		{"GET", "x", "/api/v2", "api", ""},
		{"GET", "x", "/api", "api", ""}, // "/api/*" also matches "/api"
		{"GET", "x", "/apiary", "catch-all", ""},
		{"GET", "tenant.example.com", "/api/v1/models", "tenant", ""}, // a matching host wins over a longer prefix
		{"GET", "Tenant.Example.com:8080", "/api/x", "tenant", ""},    // host compared without port, case-insensitively
		{"GET", "a.b.example.org", "/anything", "wild", ""},
		{"GET", "example.org", "/anything", "catch-all", ""}, // "*.x" is subdomains only
		{"HEAD", "x", "/report", "get-only", ""},             // HEAD is served by GET routes
		{"DELETE", "x", "/report", "catch-all", ""},          // a less specific route that allows it wins
	} {
		got, allowed := rt.match(tc.method, tc.host, tc.path)
		name := "<none>"
		if got != nil {
			name = got.id
		}
		if name != tc.want || strings.Join(allowed, ",") != tc.allowed {
			t.Errorf("%s %s%s: route %s allowed %v, want %s %q", tc.method, tc.host, tc.path, name, allowed, tc.want, tc.allowed)
		}
	}
}

func TestRouter404And405(t *testing.T) {
	rt := testRouter(
		&route{id: "a", exact: "/x", methods: []string{"POST"}},
		&route{id: "b", exact: "/x/*", methods: []string{"PUT", "POST"}},
	)
	if r, allowed := rt.match("GET", "h", "/y"); r != nil || len(allowed) != 0 {
		t.Fatalf("no route must be a 404: %v %v", r, allowed)
	}
	if r, allowed := rt.match("GET", "h", "/x"); r != nil || strings.Join(allowed, ",") != "POST,PUT" {
		t.Fatalf("a path whose routes do not allow the method must be a 405 with every allowed method: %v %v", r, allowed)
	}
}
