package phases

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/phasegate/phasegate/fsm"
)

// BoundGauge is a gauge vector whose increments are bindings: Acquire raises
// the series for the given label values and binds the matching decrement to a
// scope, so the series falls exactly once, with the same labels, however the
// request ends. This is how every in-flight gauge in phasegate is kept.
type BoundGauge struct {
	// Name identifies the gauge in ledgers and traces (usually its metric name).
	Name string
	Vec  *prometheus.GaugeVec
}

// Acquire increments the series labelValues of g and binds its decrement to
// s. The label values are captured now: changing request state later cannot
// change which series is decremented.
func (g BoundGauge) Acquire(s *fsm.Scope, labelValues ...string) fsm.Binding {
	series := g.Vec.WithLabelValues(labelValues...)
	series.Inc()
	return s.Acquire(fsm.Resource{Name: g.Name, Labels: slices.Clone(labelValues)}, series.Dec)
}
