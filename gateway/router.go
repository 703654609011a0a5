package gateway

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strings"

	"github.com/phasegate/phasegate/gateway/internal/canonpath"
	"github.com/phasegate/phasegate/llm/door"
	"github.com/phasegate/phasegate/phases"
)

// route is a compiled RouteConfig.
type route struct {
	id      string
	exact   string // set for an exact URI
	prefix  string // set for a "/prefix/*" URI (kept with its trailing "/")
	methods []string
	hosts   []string // lower case; "*.x" wildcards
	order   int
	chain   *phases.Chain

	// allowEncodedSlashes keeps %2F and %5C in paths as data; without it
	// such a path is answered 400 by badPath.
	allowEncodedSlashes bool
	// badPath is the chain that answers a path the route refuses, so the
	// 400 is counted and logged under the route.
	badPath *phases.Chain
}

// router finds the route of a request. Precedence, highest first:
//  1. routes that list hosts (and match the request's) before routes for any host;
//  2. exact URIs before prefixes;
//  3. longer prefixes before shorter ones;
//  4. config order.
//
// A route that does not allow the request's method is passed over and the
// next in precedence is tried; when routes match the host and path but none
// allows the method, the answer is 405 with Allow listing the methods they
// allow. HEAD is served by routes that allow GET.
type router struct {
	routes []*route
}

func newRouter(routes []*route) *router {
	rs := append([]*route(nil), routes...)
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if (len(a.hosts) > 0) != (len(b.hosts) > 0) {
			return len(a.hosts) > 0
		}
		if (a.exact != "") != (b.exact != "") {
			return a.exact != ""
		}
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		return a.order < b.order
	})
	return &router{routes: rs}
}

func (rt *route) matchPath(path string) bool {
	if rt.exact != "" {
		return path == rt.exact
	}
	// "/api/*" matches "/api" and everything under "/api/".
	return strings.HasPrefix(path, rt.prefix) || path+"/" == rt.prefix
}

func (rt *route) matchHost(host string) bool {
	if len(rt.hosts) == 0 {
		return true
	}
	for _, h := range rt.hosts {
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (rt *route) allows(method string) bool {
	if len(rt.methods) == 0 {
		return true
	}
	for _, m := range rt.methods {
		if m == method || (m == http.MethodGet && method == http.MethodHead) {
			return true
		}
	}
	return false
}

// match returns the route for r, or nil and the methods the routes matching
// its host and path allow (empty when none matches: 404).
func (rr *router) match(method, host, path string) (*route, []string) {
	host = normalizeHost(host)
	var allowed []string
	for _, rt := range rr.routes {
		if !rt.matchHost(host) || !rt.matchPath(path) {
			continue
		}
		if rt.allows(method) {
			return rt, nil
		}
		for _, m := range rt.methods {
			if !contains(allowed, m) {
				allowed = append(allowed, m)
			}
		}
	}
	sort.Strings(allowed)
	return nil, allowed
}

func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// notFound is the access hook of the chain that serves requests no route
// takes: it answers 400 for a path that has no canonical form or holds an
// encoded slash (no route allowed it), else 404, or 405 with Allow. Running
// it as a chain keeps these requests on the lifecycle (metrics with
// route="", access log).
type notFound struct{ router *router }

func (notFound) Name() string  { return routerPlugin }
func (notFound) Priority() int { return -1 << 30 }

func (n notFound) Access(ctx context.Context, r *phases.Request) phases.Exit {
	p, err := canonpath.FromURL(r.URL)
	if err != nil || p.EncodedSlash {
		return pathError(err)
	}
	if _, _, ok := door.ByPath(p.Path); ok {
		door.Enter(r, door.Auto) // the 404 in the protocol the path names
	}
	_, allowed := n.router.match(r.Method, r.Host, p.Route)
	if len(allowed) == 0 {
		return phases.Error(http.StatusNotFound, "invalid_request_error", "no route matches "+p.Path)
	}
	allow := strings.Join(allowed, ", ")
	return phases.Error(http.StatusMethodNotAllowed, "invalid_request_error", "method "+r.Method+" is not allowed here; allowed: "+allow).
		WithHeader("Allow", allow)
}

// routerPlugin names the router's exits in metrics and the access log.
const routerPlugin = "router"

// msgEncodedSlash is the 400 of a path with an encoded slash or backslash
// on a route without allow_encoded_slashes.
const msgEncodedSlash = `the path holds an encoded slash or backslash (%2F, %5C) or a backslash, which this route does not allow`

// pathError is the 400 of a refused path: err from canonpath, or nil for an
// encoded slash.
func pathError(err error) phases.Exit {
	msg := msgEncodedSlash
	if err != nil {
		msg = err.Error()
	}
	return phases.Error(http.StatusBadRequest, "invalid_request_error", msg)
}

// badPath is the access hook of a route's badPath chain: the route matched,
// but the path holds an encoded slash the route does not allow.
type badPath struct{}

func (badPath) Name() string  { return routerPlugin }
func (badPath) Priority() int { return -1 << 30 }

func (badPath) Access(context.Context, *phases.Request) phases.Exit { return pathError(nil) }

// unreachable is the upstream of the notFound chain; its access hook always
// exits first.
type unreachable struct{}

func (unreachable) Name() string { return "none" }
func (unreachable) Upstream(context.Context, *phases.Request) (*phases.Response, error) {
	return nil, &phases.ExitError{Exit: phases.Error(http.StatusNotFound, "invalid_request_error", "no route")}
}
