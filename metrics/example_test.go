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
