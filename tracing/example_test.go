package tracing_test

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/trace"

	"github.com/phasegate/phasegate/tracing"
)

// Without a tracing: block the provider is off: spans cost nothing and
// nothing runs in the background.
func ExampleNew_off() {
	tp, err := tracing.New(nil, tracing.Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		panic(err)
	}
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer(tracing.ScopeName)

	ctx := context.Background()
	if tp.Enabled() { // build options only when they will be used
		fmt.Println("tracing on")
	}
	_, span := tracer.Start(ctx, "GET health")
	span.End()
	fmt.Println("enabled:", tp.Enabled(), "recording:", span.IsRecording())
	// Output: enabled: false recording: false
}

func ExampleConfig_Validate() {
	ratio := 1.5
	cfg := tracing.Config{
		OTLP:    tracing.OTLPConfig{Endpoint: "https://collector:4317", Protocol: "grpc"},
		Sampler: tracing.SamplerConfig{Ratio: &ratio},
	}
	for _, e := range cfg.Validate() {
		fmt.Printf("%s: %s\n", e.Field, e.Msg)
	}
	// Output:
	// otlp.endpoint: must be host:port without a scheme, like 127.0.0.1:4317 (insecure: true sends plaintext)
	// sampler.ratio: must be between 0 and 1, got 1.5
}

// A histogram observation made while a sampled span is current carries
// the trace id as its exemplar.
func ExampleObserve() {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "request_duration_seconds", Help: "h", Buckets: []float64{1}})
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:  trace.SpanID{1}, TraceFlags: trace.FlagsSampled,
	}))
	tracing.Observe(ctx, h, 0.42)

	var m dto.Metric
	_ = h.Write(&m)
	ex := m.GetHistogram().GetBucket()[0].GetExemplar()
	fmt.Println(ex.GetLabel()[0].GetName(), ex.GetLabel()[0].GetValue(), ex.GetValue())
	// Output: trace_id 4bf92f3577b34da6a3ce929d0e0e4736 0.42
}

func ExampleAppendHTTPMethod() {
	for _, m := range []string{"POST", "BREW"} {
		fmt.Printf("%q:", tracing.ServerSpanName(m, "chat"))
		for _, kv := range tracing.AppendHTTPMethod(nil, m) {
			fmt.Printf(" %s=%s", kv.Key, kv.Value.String())
		}
		fmt.Println()
	}
	// Output:
	// "POST chat": http.request.method=POST
	// "HTTP chat": http.request.method=_OTHER http.request.method_original=BREW
}
