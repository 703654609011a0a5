package otlptest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/phasegate/phasegate/internal/otlptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// request is two spans of one trace, a root and its child with an event.
func request() *coltracepb.ExportTraceServiceRequest {
	tid := bytes.Repeat([]byte{0xab}, 16)
	root, child := bytes.Repeat([]byte{1}, 8), bytes.Repeat([]byte{2}, 8)
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", "svc")}},
		ScopeSpans: []*tracepb.ScopeSpans{{
			Scope: &commonpb.InstrumentationScope{Name: "scope"},
			Spans: []*tracepb.Span{
				{TraceId: tid, SpanId: root, Name: "POST chat", Kind: tracepb.Span_SPAN_KIND_SERVER,
					Attributes: []*commonpb.KeyValue{
						str("http.route", "chat"),
						{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}},
					}},
				{TraceId: tid, SpanId: child, ParentSpanId: root, Name: "chat gpt", Kind: tracepb.Span_SPAN_KIND_CLIENT,
					Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
					Events: []*tracepb.Span_Event{{Name: "first", Attributes: []*commonpb.KeyValue{str("k", "v")}}}},
			},
		}},
	}}}
}

func checkSpans(t *testing.T, spans []otlptest.Span, protocol string) {
	t.Helper()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	root, child := spans[0], spans[1]
	if root.Name != "POST chat" || root.Kind != "server" || root.ParentSpanID != "" ||
		root.Attr("http.route") != "chat" || root.Attr("http.response.status_code") != int64(200) {
		t.Errorf("root = %+v", root)
	}
	if kids := otlptest.Children(spans, root); len(kids) != 1 || kids[0].SpanID != child.SpanID {
		t.Errorf("children of the root = %+v, want the child", kids)
	}
	if child.StatusCode != "error" || child.StatusMsg != "boom" || child.Kind != "client" {
		t.Errorf("child = %+v", child)
	}
	if got := child.EventNames(); len(got) != 1 || got[0] != "first" || child.Events[0].Attributes["k"] != "v" {
		t.Errorf("child events = %+v", child.Events)
	}
	for _, s := range spans {
		if s.Resource["service.name"] != "svc" || s.Scope != "scope" || s.Protocol != protocol || s.TraceID != "abababababababababababababababab" {
			t.Errorf("span %q: resource %v scope %q protocol %q trace %s", s.Name, s.Resource, s.Scope, s.Protocol, s.TraceID)
		}
	}
}

func dialGRPC(t *testing.T, r *otlptest.Receiver) coltracepb.TraceServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(r.GRPCEndpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return coltracepb.NewTraceServiceClient(conn)
}

func postHTTP(t *testing.T, r *otlptest.Receiver, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.HTTPEndpoint()+"/v1/traces", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestGRPC(t *testing.T) {
	r := otlptest.Start(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-key", "secret")
	if _, err := dialGRPC(t, r).Export(ctx, request()); err != nil {
		t.Fatal(err)
	}
	checkSpans(t, r.Spans(), otlptest.GRPC)
	if ex := r.Exports(); len(ex) != 1 || ex[0].Headers["x-key"][0] != "secret" || ex[0].Spans != 2 {
		t.Errorf("exports = %+v", ex)
	}
}

func TestHTTP(t *testing.T) {
	r := otlptest.Start(t)
	body, err := proto.Marshal(request())
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	resp := postHTTP(t, r, gz.Bytes(), http.Header{
		"Content-Type": {"application/x-protobuf"}, "Content-Encoding": {"gzip"}, "X-Key": {"secret"},
	})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkSpans(t, r.Spans(), otlptest.HTTP)
	if ex := r.Exports(); len(ex) != 1 || ex[0].Headers["x-key"][0] != "secret" {
		t.Errorf("exports = %+v", ex)
	}
	if resp := postHTTP(t, r, body, http.Header{"Content-Type": {"application/json"}}); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a JSON body: status %d, want 415", resp.StatusCode)
	}
	if resp := postHTTP(t, r, []byte("\xff\xff"), http.Header{"Content-Type": {"application/x-protobuf"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a malformed body: status %d, want 400", resp.StatusCode)
	}
}

// exportFails exports with a deadline of d, fails the test if the export
// succeeds, and returns how long it took to fail.
func exportFails(t *testing.T, c coltracepb.TraceServiceClient, d time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	if _, err := c.Export(ctx, request()); err == nil {
		t.Fatal("the export succeeded")
	}
	return time.Since(start)
}

func TestStopRestart(t *testing.T) {
	r := otlptest.Start(t)
	c := dialGRPC(t, r)
	r.Stop()
	exportFails(t, c, 2*time.Second)
	r.Restart()
	// gRPC reconnects on its own; wait for it rather than for a backoff.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Export(ctx, request(), grpc.WaitForReady(true)); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if got := len(r.Spans()); got != 2 {
		t.Errorf("%d spans after the restart, want 2", got)
	}
}

func TestStall(t *testing.T) {
	r := otlptest.Start(t)
	c := dialGRPC(t, r)
	r.Stall()
	if took := exportFails(t, c, 200*time.Millisecond); took < 150*time.Millisecond {
		t.Errorf("the stalled export failed after %s, before the client's deadline", took)
	}
	if r.Stalled() != 1 || len(r.Spans()) != 0 {
		t.Errorf("stalled %d, spans %d: want 1 held, none recorded", r.Stalled(), len(r.Spans()))
	}
	r.Release()
	if _, err := c.Export(context.Background(), request()); err != nil {
		t.Fatalf("after Release: %v", err)
	}
	r.WaitSpans(2, 5*time.Second)
}

func TestDiscard(t *testing.T) {
	r := otlptest.Start(t)
	r.Discard()
	c := dialGRPC(t, r)
	for range 3 {
		if _, err := c.Export(context.Background(), request()); err != nil {
			t.Fatal(err)
		}
	}
	if r.Received() != 6 || len(r.Spans()) != 0 || len(r.Exports()) != 0 {
		t.Errorf("received %d, kept %d spans and %d exports: want 6 counted, none kept", r.Received(), len(r.Spans()), len(r.Exports()))
	}
}
