package wrr_test

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/phasegate/phasegate/forward/wrr"
)

func sequence(b *wrr.Balancer, n int, skip func(int) bool) string {
	picks := make([]string, n)
	for i := range picks {
		picks[i] = strconv.Itoa(b.Next(skip))
	}
	return strings.Join(picks, " ")
}

func TestSequence(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    string
	}{
		{[]int{4, 1}, "0 0 1 0 0 0 0 1 0 0"},
		{[]int{2, 1, 1}, "0 1 2 0 0 1 2 0"},
		{[]int{5, 1, 1}, "0 0 1 0 2 0 0 0 0 1 0 2 0 0"}, // nginx's documented example
		{[]int{1, 1, 1}, "0 1 2 0 1 2"},
		{[]int{3, 0, 1}, "0 0 2 0 0 0 2 0"},
		{[]int{0, 7, -1}, "1 1 1"},
		{[]int{0, 0}, "-1 -1"},
		{nil, "-1"},
	} {
		b := wrr.New(tc.weights)
		if got := sequence(b, len(strings.Fields(tc.want)), nil); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.weights, got, tc.want)
		}
	}
}

// Skipped items take no part in a pick: the others share it by weight, and
// their current weights move by the total of those taking part only.
func TestSkip(t *testing.T) {
	b := wrr.New([]int{4, 1, 2})
	skip1 := func(i int) bool { return i == 1 }
	if got, want := sequence(b, 6, skip1), "0 2 0 0 2 0"; got != want {
		t.Errorf("skipping 1: got %q, want %q", got, want)
	}
	all := func(int) bool { return true }
	if got := b.Next(all); got != -1 {
		t.Errorf("every item skipped: got %d, want -1", got)
	}
	one := wrr.New([]int{0, 3})
	if got := one.Next(func(i int) bool { return i == 1 }); got != -1 {
		t.Errorf("the only live item skipped: got %d, want -1", got)
	}
}

// Concurrent picks keep the exact proportions over whole rounds.
func TestConcurrent(t *testing.T) {
	b := wrr.New([]int{4, 1, 0, 2})
	const workers, rounds = 8, 50 // total weight 7: 8*50*7 picks
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[int]int{}
			for range rounds * 7 {
				local[b.Next(nil)]++
			}
			mu.Lock()
			for k, v := range local {
				counts[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	want := map[int]int{0: 4 * workers * rounds, 1: workers * rounds, 3: 2 * workers * rounds}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("item %d picked %d times, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	if counts[2] != 0 {
		t.Errorf("item of weight 0 picked %d times", counts[2])
	}
}
