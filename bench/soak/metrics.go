package soak

import (
	"fmt"
	"sort"

	"github.com/phasegate/phasegate/bench/harness"
)

// RouteCode is one series of phasegate_http_requests_total: a route id
// ("" for unmatched requests) and the status code label.
type RouteCode struct {
	Route string
	Code  string
}

func (rc RouteCode) String() string { return fmt.Sprintf("{route=%q,code=%q}", rc.Route, rc.Code) }

// requestsByRouteCode returns phasegate_http_requests_total by (route, code).
func requestsByRouteCode(m harness.Metrics) map[RouteCode]float64 {
	out := map[RouteCode]float64{}
	for _, s := range m.Samples(harness.MetricRequests) {
		out[RouteCode{s.Labels["route"], s.Labels["code"]}] += s.Value
	}
	return out
}

// Tally counts the requests the clients sent by the (route, code) the
// server is expected to record for each.
type Tally map[RouteCode]int

// Add counts one request.
func (t Tally) Add(route string, code int) { t[RouteCode{route, fmt.Sprint(code)}]++ }

// Total is the number of requests counted.
func (t Tally) Total() int {
	n := 0
	for _, v := range t {
		n += v
	}
	return n
}

// Merge adds o's counts to t.
func (t Tally) Merge(o Tally) {
	for k, v := range o {
		t[k] += v
	}
}

// Mismatch is one (route, code) whose server count differs from the
// clients' tally.
type Mismatch struct {
	Key    RouteCode
	Client int
	Server float64
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s clients %d, server %g", m.Key, m.Client, m.Server)
}

// CompareTally returns the (route, code) pairs where the server's
// phasegate_http_requests_total differs from the clients' tally, sorted. A
// series missing on one side counts as 0, so a series at 0 on the server
// that no client produced is no mismatch.
func CompareTally(want Tally, got map[RouteCode]float64) []Mismatch {
	keys := map[RouteCode]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var out []Mismatch
	for k := range keys {
		if float64(want[k]) != got[k] {
			out = append(out, Mismatch{Key: k, Client: want[k], Server: got[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.Route != out[j].Key.Route {
			return out[i].Key.Route < out[j].Key.Route
		}
		return out[i].Key.Code < out[j].Key.Code
	})
	return out
}
