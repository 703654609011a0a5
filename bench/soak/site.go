package soak

import (
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// Areas of the site: where a request lands once the site has resolved its
// path.
const (
	areaAdmin  = "admin"  // /admin and below: routeAdmin's, behind key-auth
	areaPublic = "public" // /public and below: routePublic's, open
	areaOther  = "other"
)

// site is the upstream of the path-games routes, routeAdmin and
// routePublic: a server in the soak's process that, like a static file
// server (http.FileServer), decodes the path and resolves it with
// path.Clean before it serves. A request phasegate routed by one path and
// forwarded with another therefore lands where the site resolves it, as in
// a real deployment. It answers 200 "AREA PATH" and records every request
// it gets, to be held against the requests the clients expected to reach
// it.
//
// Keep-alive is off: phasegate pools no connection to the site, so its
// goroutine count is not moved by the site's traffic.
type site struct {
	ln  net.Listener
	srv *http.Server

	mu     sync.Mutex
	expect map[string]siteWant // by request id, registered before the request is sent
	visits []siteVisit
}

// siteWant is a request a client expects the site to get.
type siteWant struct {
	target string // the request target the site must get: the canonical path and the query without the key
	auth   bool   // sent with the consumer's key
}

// siteVisit is a request the site got.
type siteVisit struct {
	id     string // X-Request-Id
	target string // the request target as received
	area   string // of the resolved path
	key    bool   // an apikey header or query parameter came with it
}

// startSite starts the site on a free loopback port.
func startSite() (*site, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &site{ln: ln, expect: map[string]siteWant{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second}
	s.srv.SetKeepAlivesEnabled(false)
	go s.srv.Serve(ln)
	return s, nil
}

func (s *site) addr() string { return s.ln.Addr().String() }

// close stops the site at once.
func (s *site) close() error { return s.srv.Close() }

// resolve is the area and resolved form of a decoded request path.
func resolve(p string) (area, clean string) {
	clean = path.Clean("/" + p)
	for _, a := range []string{areaAdmin, areaPublic} {
		if clean == "/"+a || strings.HasPrefix(clean, "/"+a+"/") {
			return a, clean
		}
	}
	return areaOther, clean
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	area, clean := resolve(r.URL.Path)
	v := siteVisit{
		id: r.Header.Get("X-Request-Id"), target: r.RequestURI, area: area,
		key: r.Header.Get(keyHeader) != "" || r.URL.Query().Has(keyHeader),
	}
	s.mu.Lock()
	s.visits = append(s.visits, v)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, area+" "+clean)
}

// want registers a request a client is about to send, which the site must
// get with target.
func (s *site) want(id, target string, auth bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expect[id] = siteWant{target: target, auth: auth}
}

// siteLog is what the site was told to expect and what it got.
type siteLog struct {
	expect map[string]siteWant
	visits []siteVisit
}

func (s *site) log() siteLog {
	s.mu.Lock()
	defer s.mu.Unlock()
	return siteLog{expect: maps.Clone(s.expect), visits: slices.Clone(s.visits)}
}

// checkAdminUpstream is the end check of the path games: every request that
// reached the admin area of the site was sent with the consumer's key, so
// no path led around key-auth.
func checkAdminUpstream(e endState) Check {
	var bad []string
	n := 0
	for _, v := range e.site.visits {
		if v.area != areaAdmin {
			continue
		}
		n++
		if w, ok := e.site.expect[v.id]; !ok || !w.auth {
			bad = append(bad, fmt.Sprintf("%s %q", v.id, v.target))
		}
	}
	c := Check{Name: "no unauthenticated request reached the admin upstream", OK: len(bad) == 0 && n > 0}
	switch {
	case len(bad) > 0:
		c.Detail = fmt.Sprintf("%d of %d requests in the admin area came without the consumer's key: %s", len(bad), n, firstFew(bad, 6))
	case n == 0:
		c.Detail = "no request reached the admin area, not even those sent with the key"
	default:
		c.Detail = fmt.Sprintf("%d requests reached the admin area, each sent with the consumer's key", n)
	}
	return c
}

// checkSiteRequests is the path games' tally at the upstream: the site got
// each request the clients expected it to get exactly once, by the
// canonical path phasegate routed it by, without the consumer's key, and
// no other request.
func checkSiteRequests(e endState) Check {
	var diff []string
	seen := map[string]int{}
	keys := 0
	for _, v := range e.site.visits {
		seen[v.id]++
		w, ok := e.site.expect[v.id]
		switch {
		case !ok:
			diff = append(diff, fmt.Sprintf("%s %q (%s) never expected", v.id, v.target, v.area))
		case v.target != w.target:
			diff = append(diff, fmt.Sprintf("%s arrived as %q, want %q", v.id, v.target, w.target))
		}
		if v.key {
			keys++
			diff = append(diff, fmt.Sprintf("%s %q came with the key", v.id, v.target))
		}
	}
	for _, id := range sortedKeys(e.site.expect) {
		if n := seen[id]; n != 1 {
			diff = append(diff, fmt.Sprintf("%s arrived %d times, want once", id, n))
		}
	}
	c := Check{Name: "the path-games upstream got each request once, by its canonical path, without the key", OK: len(diff) == 0}
	c.Detail = fmt.Sprintf("%d requests, as expected", len(e.site.visits))
	if !c.OK {
		c.Detail = fmt.Sprintf("%d problems (%d with the key): %s", len(diff), keys, firstFew(diff, 6))
	}
	return c
}
