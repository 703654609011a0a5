package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p% of the
// samples are less than or equal to it. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// latencies summarises a set of latency samples.
type latencies struct {
	N   int
	P50 time.Duration
	P99 time.Duration
	Max time.Duration
}

// summarize sorts samples in place and summarises them.
func summarize(samples []time.Duration) latencies {
	slices.Sort(samples)
	l := latencies{N: len(samples), P50: percentile(samples, 50), P99: percentile(samples, 99)}
	if len(samples) > 0 {
		l.Max = samples[len(samples)-1]
	}
	return l
}

// ratio is a/b, or NaN when either is unknown (NaN) or b is 0.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}
