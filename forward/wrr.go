package forward

import (
	"sort"
	"sync"
)

// balancer is nginx's smooth weighted round robin: on each pick every node's
// current weight grows by its weight, the node with the largest current
// weight is picked (the first in address order on a tie) and its current
// weight drops by the total. The sequence is deterministic and interleaved:
// weights a:4 b:1 give a a b a a, a:2 b:1 c:1 give a b c a. Nodes of weight
// 0 are never picked. It is safe for concurrent use.
type balancer struct {
	mu    sync.Mutex
	nodes []wrrNode
	total int
}

type wrrNode struct {
	addr    string
	weight  int
	current int
}

// newBalancer returns a balancer over the nodes of positive weight, or nil
// if there are none.
func newBalancer(nodes map[string]int) *balancer {
	b := &balancer{}
	for addr, w := range nodes {
		if w > 0 {
			b.nodes = append(b.nodes, wrrNode{addr: addr, weight: w})
			b.total += w
		}
	}
	if len(b.nodes) == 0 {
		return nil
	}
	sort.Slice(b.nodes, func(i, j int) bool { return b.nodes[i].addr < b.nodes[j].addr })
	return b
}

// next picks the next node.
func (b *balancer) next() string {
	if len(b.nodes) == 1 {
		return b.nodes[0].addr
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	best := 0
	for i := range b.nodes {
		n := &b.nodes[i]
		n.current += n.weight
		if n.current > b.nodes[best].current {
			best = i
		}
	}
	b.nodes[best].current -= b.total
	return b.nodes[best].addr
}
