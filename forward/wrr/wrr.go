// Package wrr is nginx's smooth weighted round robin, the one balancer behind
// both the plain upstream's nodes and ai-proxy-multi's instances.
//
// On each pick every candidate's current weight grows by its weight, the
// candidate with the largest current weight is picked (the lowest index on a
// tie) and its current weight drops by the candidates' total. The sequence is
// deterministic and interleaved: weights 4 1 give 0 0 1 0 0, weights 2 1 1
// give 0 1 2 0. Items of weight 0 or less are never picked.
package wrr

import "sync"

// Balancer picks indexes 0..n-1 of the weights it was made with. It is safe
// for concurrent use.
type Balancer struct {
	mu      sync.Mutex
	weight  []int
	current []int
	only    int // the index of the single item of positive weight, or -1
}

// New returns a balancer over weights (copied).
func New(weights []int) *Balancer {
	b := &Balancer{weight: append([]int(nil), weights...), current: make([]int, len(weights)), only: -1}
	live := 0
	for i, w := range weights {
		if w > 0 {
			live++
			b.only = i
		}
	}
	if live != 1 {
		b.only = -1
	}
	return b
}

// Next returns the next index among the items of positive weight that skip
// does not reject (nil skips none), or -1 when there is none.
func (b *Balancer) Next(skip func(i int) bool) int {
	if b.only >= 0 && skip == nil {
		return b.only
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	best, total := -1, 0
	for i, w := range b.weight {
		if w <= 0 || (skip != nil && skip(i)) {
			continue
		}
		b.current[i] += w
		total += w
		if best < 0 || b.current[i] > b.current[best] {
			best = i
		}
	}
	if best >= 0 {
		b.current[best] -= total
	}
	return best
}
