package metrics_test

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/phasegate/phasegate/metrics"
)

func ExampleNew() {
	reg := prometheus.NewRegistry() // never the global registry
	set, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	set.HTTPRequests.WithLabelValues("chat", "200").Inc()
	fmt.Println(testutil.ToFloat64(set.HTTPRequests.WithLabelValues("chat", "200")))
	// Output: 1
}

func ExampleSet_ModelLabel() {
	set, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	set.SetMaxModelsPerRoute(2) // metrics.max_models_per_route
	for _, model := range []string{"gpt-4o", "gpt-4o-mini", "made-up-1", "gpt-4o"} {
		fmt.Println(set.ModelLabel("chat", model))
	}
	// Output:
	// gpt-4o
	// gpt-4o-mini
	// other
	// gpt-4o
}
