// Package otlptest runs a real OTLP trace receiver for tests: the OTLP/gRPC
// TraceService and the OTLP/HTTP protobuf endpoint POST /v1/traces, built
// from the official OTLP protobuf packages, on free loopback ports. It
// collects every span it is sent, with the headers of each export, for
// assertions by name, parent, attributes and events. A test can stop it
// and start it again on the same ports (a collector outage), or make it
// stall: take exports and never answer.
package otlptest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // exporters may compress (OTEL_EXPORTER_OTLP_COMPRESSION)
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// MaxBodyBytes bounds one OTLP/HTTP request body, compressed or not.
const MaxBodyBytes = 32 << 20

// Protocols, as recorded in Export and Span.
const (
	GRPC = "grpc"
	HTTP = "http"
)

// Span is one received span, decoded for assertions.
type Span struct {
	Name         string
	Kind         string // "server", "client", "internal", "producer", "consumer"
	TraceID      string // 32 hex digits
	SpanID       string // 16 hex digits
	ParentSpanID string // "" for a root span
	TraceState   string
	Start, End   time.Time
	StatusCode   string // "unset", "ok", "error"
	StatusMsg    string
	Attributes   map[string]any // string, bool, int64, float64, []any, map[string]any or []byte
	Events       []Event
	Resource     map[string]any
	Scope        string
	Protocol     string // GRPC or HTTP: how it arrived
}

// Event is one span event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes map[string]any
}

// Attr returns the span's attribute key, or nil.
func (s Span) Attr(key string) any { return s.Attributes[key] }

// EventNames lists the span's events by name, in order.
func (s Span) EventNames() []string {
	names := make([]string, len(s.Events))
	for i, e := range s.Events {
		names[i] = e.Name
	}
	return names
}

// Export is one export request that was answered.
type Export struct {
	Protocol string
	Headers  map[string][]string // keys lower-cased
	Spans    int
}

// Receiver is a running OTLP receiver. Its methods are safe for concurrent
// use.
type Receiver struct {
	t        testing.TB
	grpcAddr string
	httpAddr string

	mu       sync.Mutex
	spans    []Span
	exports  []Export
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	conns    sync.WaitGroup // the servers' Serve loops
	stall    chan struct{}  // non-nil while stalled; closed to release
	stalled  int            // exports held by a stall so far
	discard  bool           // count spans, keep none
	received int            // spans received, kept or not
	arrived  chan struct{}  // closed and replaced whenever spans arrive
}

// Start runs a receiver on two free loopback ports until the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{t: t, arrived: make(chan struct{})}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: %v", err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gl.Close()
		t.Fatalf("otlptest: %v", err)
	}
	r.grpcAddr, r.httpAddr = gl.Addr().String(), hl.Addr().String()
	r.serve(gl, hl)
	t.Cleanup(r.Stop)
	return r
}

// GRPCEndpoint is the host:port of the OTLP/gRPC TraceService.
func (r *Receiver) GRPCEndpoint() string { return r.grpcAddr }

// HTTPEndpoint is the host:port of the OTLP/HTTP endpoint (POST /v1/traces).
func (r *Receiver) HTTPEndpoint() string { return r.httpAddr }

func (r *Receiver) serve(gl, hl net.Listener) {
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, &traceService{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/traces", r.serveHTTP)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.grpcSrv, r.httpSrv = gs, hs
	r.mu.Unlock()
	r.conns.Add(2)
	go func() { defer r.conns.Done(); _ = gs.Serve(gl) }()
	go func() { defer r.conns.Done(); _ = hs.Serve(hl) }()
}

// Stop closes both listeners and every connection, as a collector that
// went down: exports in progress fail, new ones are refused. A stall is
// released first. Stopping a stopped receiver does nothing.
func (r *Receiver) Stop() {
	r.mu.Lock()
	gs, hs := r.grpcSrv, r.httpSrv
	r.grpcSrv, r.httpSrv = nil, nil
	r.releaseLocked()
	r.mu.Unlock()
	if gs == nil {
		return
	}
	gs.Stop()
	_ = hs.Close()
	r.conns.Wait()
}

// Restart starts a stopped receiver again on the same ports. It fails the
// test if a port was taken meanwhile.
func (r *Receiver) Restart() {
	r.t.Helper()
	r.mu.Lock()
	running := r.grpcSrv != nil
	r.mu.Unlock()
	if running {
		return
	}
	gl, err := net.Listen("tcp", r.grpcAddr)
	if err != nil {
		r.t.Fatalf("otlptest: restarting on %s: %v", r.grpcAddr, err)
	}
	hl, err := net.Listen("tcp", r.httpAddr)
	if err != nil {
		gl.Close()
		r.t.Fatalf("otlptest: restarting on %s: %v", r.httpAddr, err)
	}
	r.serve(gl, hl)
}

// Stall makes the receiver take every export and never answer, until
// Release or Stop; stalled exports record nothing.
func (r *Receiver) Stall() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stall == nil {
		r.stall = make(chan struct{})
	}
}

// Release ends a stall: exports held by it are answered with an error
// (the receiver was not there to take them) and later ones are served.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked()
}

func (r *Receiver) releaseLocked() {
	if r.stall != nil {
		close(r.stall)
		r.stall = nil
	}
}

// Stalled is how many exports a stall has held so far.
func (r *Receiver) Stalled() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stalled
}

var errStalled = errors.New("otlptest: the export was held by a stall")

// hold blocks while the receiver is stalled, until the stall is released
// or ctx ends, and then reports the export as failed.
func (r *Receiver) hold(ctx context.Context) error {
	r.mu.Lock()
	stall := r.stall
	if stall != nil {
		r.stalled++
	}
	r.mu.Unlock()
	if stall == nil {
		return nil
	}
	select {
	case <-stall:
	case <-ctx.Done():
	}
	return errStalled
}

// Discard makes the receiver count the spans it is sent and keep none,
// so that a benchmark or a long test does not grow the heap.
func (r *Receiver) Discard() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.discard = true
}

// Received is how many spans arrived, kept or discarded.
func (r *Receiver) Received() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// Spans returns a copy of every span received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// Exports returns every answered export so far.
func (r *Receiver) Exports() []Export {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exports)
}

// WaitSpans waits until at least n spans have arrived and returns them; it
// fails the test after timeout.
func (r *Receiver) WaitSpans(n int, timeout time.Duration) []Span {
	r.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, arrived := len(r.spans), r.arrived
		r.mu.Unlock()
		if got >= n {
			return r.Spans()
		}
		select {
		case <-arrived:
		case <-deadline.C:
			r.t.Fatalf("otlptest: %d spans arrived within %s, want at least %d", got, timeout, n)
			return nil
		}
	}
}

// Find returns the spans received so far whose name is name.
func (r *Receiver) Find(name string) []Span { return ByName(r.Spans(), name) }

// ByName returns the spans of spans whose name is name.
func ByName(spans []Span, name string) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// Children returns the spans of spans whose parent is parent.
func Children(spans []Span, parent Span) []Span {
	var out []Span
	for _, s := range spans {
		if s.ParentSpanID == parent.SpanID && s.TraceID == parent.TraceID {
			out = append(out, s)
		}
	}
	return out
}

// record stores the spans of one answered export.
func (r *Receiver) record(protocol string, headers map[string][]string, req *coltracepb.ExportTraceServiceRequest) {
	var got []Span
	for _, rs := range req.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				got = append(got, decodeSpan(s, res, ss.GetScope().GetName(), protocol))
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.received += len(got)
	if r.discard {
		return
	}
	r.spans = append(r.spans, got...)
	r.exports = append(r.exports, Export{Protocol: protocol, Headers: headers, Spans: len(got)})
	close(r.arrived)
	r.arrived = make(chan struct{})
}

type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s *traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := s.r.hold(ctx); err != nil {
		return nil, err
	}
	md, _ := metadata.FromIncomingContext(ctx)
	s.r.record(GRPC, md, req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/x-protobuf" {
		http.Error(w, "OTLP/HTTP protobuf only (application/x-protobuf)", http.StatusUnsupportedMediaType)
		return
	}
	if err := r.hold(req.Context()); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = http.MaxBytesReader(w, req.Body, MaxBodyBytes)
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(body)
		if err != nil {
			http.Error(w, "bad gzip body: "+err.Error(), http.StatusBadRequest)
			return
		}
		defer zr.Close()
		body = io.LimitReader(zr, MaxBodyBytes+1)
	}
	data, err := io.ReadAll(body)
	if err != nil || len(data) > MaxBodyBytes {
		http.Error(w, fmt.Sprintf("reading the body: %v (limit %d bytes)", err, MaxBodyBytes), http.StatusRequestEntityTooLarge)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, "not an ExportTraceServiceRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	headers := make(map[string][]string, len(req.Header))
	for k, v := range req.Header {
		headers[strings.ToLower(k)] = v
	}
	r.record(HTTP, headers, &msg)
	out, err := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func decodeSpan(s *tracepb.Span, res map[string]any, scope, protocol string) Span {
	out := Span{
		Name:       s.GetName(),
		Kind:       kindName(s.GetKind()),
		TraceID:    hex.EncodeToString(s.GetTraceId()),
		SpanID:     hex.EncodeToString(s.GetSpanId()),
		TraceState: s.GetTraceState(),
		Start:      time.Unix(0, int64(s.GetStartTimeUnixNano())),
		End:        time.Unix(0, int64(s.GetEndTimeUnixNano())),
		StatusCode: statusName(s.GetStatus().GetCode()),
		StatusMsg:  s.GetStatus().GetMessage(),
		Attributes: attrs(s.GetAttributes()),
		Resource:   res,
		Scope:      scope,
		Protocol:   protocol,
	}
	if len(s.GetParentSpanId()) > 0 {
		out.ParentSpanID = hex.EncodeToString(s.GetParentSpanId())
	}
	for _, e := range s.GetEvents() {
		out.Events = append(out.Events, Event{
			Name:       e.GetName(),
			Time:       time.Unix(0, int64(e.GetTimeUnixNano())),
			Attributes: attrs(e.GetAttributes()),
		})
	}
	return out
}

// kindName is "server", "client", "internal", "producer", "consumer" or
// "unspecified".
func kindName(k tracepb.Span_SpanKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "SPAN_KIND_"))
}

// statusName is "unset", "ok" or "error".
func statusName(c tracepb.Status_StatusCode) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "STATUS_CODE_"))
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return x.BytesValue
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			out[i] = value(e)
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		return attrs(x.KvlistValue.GetValues())
	}
	return nil
}
