package forward

import (
	"strings"
	"sync"
	"testing"
)

func sequence(b *balancer, n int) string {
	picks := make([]string, n)
	for i := range picks {
		picks[i] = b.next()
	}
	return strings.Join(picks, " ")
}

func TestBalancerSequence(t *testing.T) {
	for _, tc := range []struct {
		nodes map[string]int
		want  string
	}{
		{map[string]int{"a": 4, "b": 1}, "a a b a a a a b a a"},
		{map[string]int{"a": 2, "b": 1, "c": 1}, "a b c a a b c a"},
		{map[string]int{"a": 5, "b": 1, "c": 1}, "a a b a c a a a a b a c a a"}, // nginx's documented example
		{map[string]int{"a": 1, "b": 1, "c": 1}, "a b c a b c"},
		{map[string]int{"a": 3, "b": 0, "c": 1}, "a a c a a a c a"},
		{map[string]int{"only": 7}, "only only only"},
	} {
		b := newBalancer(tc.nodes)
		if got := sequence(b, len(strings.Fields(tc.want))); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.nodes, got, tc.want)
		}
	}
	if newBalancer(map[string]int{"a": 0}) != nil {
		t.Error("a balancer with no live node should be nil")
	}
}

// Concurrent picks keep the exact proportions over whole rounds.
func TestBalancerConcurrent(t *testing.T) {
	b := newBalancer(map[string]int{"a": 4, "b": 1, "c": 0, "d": 2})
	const workers, rounds = 8, 50 // total weight 7: 8*50*7 picks
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := map[string]int{}
			for range rounds * 7 {
				local[b.next()]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	want := map[string]int{"a": 4 * workers * rounds, "b": workers * rounds, "d": 2 * workers * rounds}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("node %s picked %d times, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	if counts["c"] != 0 {
		t.Errorf("drained node c picked %d times", counts["c"])
	}
}

func TestClientIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234": "192.0.2.1",
		"[::1]:80":       "::1",
		"10.0.0.1":       "10.0.0.1",
		"":               "",
		"@":              "",
	} {
		if got := clientIP(in); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", in, got, want)
		}
	}
}
