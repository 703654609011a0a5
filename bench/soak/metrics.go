package soak

import (
	"fmt"
	"sort"
	"strings"

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

// llmMetricPrefix begins the name of every metric with a model label.
const llmMetricPrefix = "phasegate_llm_"

// modelOther is the model label of the models past a route's limit.
const modelOther = "other"

// checkModelLabels checks that the model label stays bounded: in every
// phasegate_llm_* metric, each route has at most maxModelsPerRoute model
// values besides other, and the route many_models sends fresh models to
// has reached the limit (other appears). The access log's real model
// names are checked with each request's line.
func checkModelLabels(e endState) Check {
	names := e.final.Names(llmMetricPrefix)
	var over []string
	most := map[string]int{}             // route → the most model values in one metric
	seen := map[string]map[string]bool{} // route → model values in any metric
	for _, name := range names {
		byRoute := map[string]map[string]bool{}
		for _, l := range e.final.Series(name) {
			route := l["route"]
			if byRoute[route] == nil {
				byRoute[route] = map[string]bool{}
			}
			byRoute[route][l["model"]] = true
			if seen[route] == nil {
				seen[route] = map[string]bool{}
			}
			seen[route][l["model"]] = true
		}
		for _, route := range sortedKeys(byRoute) {
			n := len(byRoute[route])
			most[route] = max(most[route], n)
			if n > maxModelsPerRoute+1 {
				over = append(over, fmt.Sprintf("%s{route=%q}: %d", name, route, n))
			}
		}
	}
	hot := modelsRoute
	c := Check{Name: "model label values per route and metric ≤ max_models_per_route + other", OK: len(names) > 0 && len(over) == 0 && seen[hot][modelOther]}
	var parts []string
	for _, route := range sortedKeys(most) {
		parts = append(parts, fmt.Sprintf("%s %d", route, most[route]))
	}
	switch {
	case len(names) == 0:
		c.Detail = "no " + llmMetricPrefix + "* metric in the scrape"
	case len(over) > 0:
		c.Detail = fmt.Sprintf("%d (metric, route) pairs have more than %d: %s", len(over), maxModelsPerRoute+1, firstFew(over, 6))
	case !seen[hot][modelOther]:
		c.Detail = fmt.Sprintf("route %q never recorded model=%q, though it got more than %d models", hot, modelOther, maxModelsPerRoute)
	default:
		c.Detail = fmt.Sprintf("most values in one of %d %s* metrics, by route: %s (limit %d + %s)",
			len(names), llmMetricPrefix, strings.Join(parts, ", "), maxModelsPerRoute, modelOther)
	}
	return c
}

// metricLLMRequests counts the requests an upstream attempt served, by
// route and the two sides' protocols (docs/metrics.md).
const metricLLMRequests = "phasegate_llm_requests_total"

// doorKey is a series of metricLLMRequests: a route and the protocols of
// its client and of the instance that served it.
type doorKey struct{ Route, Client, Provider string }

// checkProtocols compares phasegate_llm_requests_total with the access
// log's served requests, by route and protocols, and checks that every
// door was served in its own protocols and no other.
func checkProtocols(e endState) Check {
	got := map[doorKey]float64{}
	for _, s := range e.final.Samples(metricLLMRequests) {
		got[doorKey{s.Labels["route"], s.Labels["client_protocol"], s.Labels["provider_protocol"]}] += s.Value
	}
	keys := map[doorKey]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range e.log.served {
		keys[k] = true
	}
	var diff []string
	for k := range keys {
		if got[k] != float64(e.log.served[k]) {
			diff = append(diff, fmt.Sprintf("%+v: metric %g, access log %d", k, got[k], e.log.served[k]))
		}
	}
	var parts []string
	for _, d := range doors {
		want := doorKey{d.route, d.wire.name, d.provider}
		for k := range keys {
			if k.Route == d.route && k != want {
				diff = append(diff, fmt.Sprintf("%+v on a door of %s to %s", k, want.Client, want.Provider))
			}
		}
		if e.log.served[want] == 0 {
			diff = append(diff, fmt.Sprintf("%+v never served", want))
		}
		parts = append(parts, fmt.Sprintf("%s %d", d.route, e.log.served[want]))
	}
	sort.Strings(diff)
	c := Check{Name: metricLLMRequests + " by route and protocols = access log", OK: len(diff) == 0}
	c.Detail = fmt.Sprintf("%d series, equal; served on the doors in their protocols: %s", len(keys), strings.Join(parts, ", "))
	if !c.OK {
		c.Detail = fmt.Sprintf("%d differences: %s", len(diff), firstFew(diff, 6))
	}
	return c
}
