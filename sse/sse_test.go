package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"

	"github.com/phasegate/phasegate/sse"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ev is a comparable copy of an sse.Event.
type ev struct {
	Raw    string
	Event  string
	Data   string
	NoData bool // Data was nil
	ID     string
}

func (e ev) String() string {
	return fmt.Sprintf("{Raw:%q Event:%q Data:%q NoData:%v ID:%q}", e.Raw, e.Event, e.Data, e.NoData, e.ID)
}

func toEv(e sse.Event) ev {
	return ev{Raw: string(e.Raw), Event: e.Event, Data: string(e.Data), NoData: e.Data == nil, ID: e.ID}
}

// readAll reads every event of rd, copying them, until an error.
func readAll(rd *sse.Reader) ([]ev, error) {
	var evs []ev
	for {
		e, err := rd.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, toEv(e))
	}
}

// normalize undoes the one way in which events depend on read boundaries:
// a "\n" completing a "\r\n" terminator split across reads is moved from the
// start of an event back to the end of the previous one.
func normalize(evs []ev) []ev {
	var out []ev
	for _, e := range evs {
		if n := len(out); n > 0 && strings.HasPrefix(e.Raw, "\n") && strings.HasSuffix(out[n-1].Raw, "\r") {
			out[n-1].Raw += "\n"
			e.Raw = e.Raw[1:]
			if e.Raw == "" {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// refParse is a straightforward, non-incremental reference parser working on
// the whole input at once.
func refParse(in string) []ev {
	var blocks []string
	start, lineStart := 0, true
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\r' && c != '\n' {
			i++
			lineStart = false
			continue
		}
		term := 1
		if c == '\r' && i+1 < len(in) && in[i+1] == '\n' {
			term = 2
		}
		i += term
		if lineStart {
			blocks = append(blocks, in[start:i])
			start = i
		}
		lineStart = true
	}
	if start < len(in) {
		blocks = append(blocks, in[start:])
	}
	var evs []ev
	for i, raw := range blocks {
		text := raw
		if i == 0 {
			text = strings.TrimPrefix(text, "\uFEFF")
		}
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
		e := ev{Raw: raw}
		var data []string
		for line := range strings.SplitSeq(text, "\n") {
			if line == "" || line[0] == ':' {
				continue
			}
			name, value, found := strings.Cut(line, ":")
			if found {
				value = strings.TrimPrefix(value, " ")
			}
			switch name {
			case "data":
				data = append(data, value)
			case "event":
				e.Event = value
			case "id":
				if !strings.Contains(value, "\x00") {
					e.ID = value
				}
			}
		}
		e.NoData = data == nil
		e.Data = strings.Join(data, "\n")
		evs = append(evs, e)
	}
	return evs
}

// chunkReader returns its input in chunks whose sizes are taken cyclically
// from sizes (each at least 1), optionally returning io.EOF together with the
// last bytes.
type chunkReader struct {
	data     []byte
	sizes    []byte
	next     int
	eofEarly bool
	reads    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	c.reads++
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(c.data)
	if len(c.sizes) > 0 {
		n = int(c.sizes[c.next%len(c.sizes)])%64 + 1
		c.next++
	}
	n = min(n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	if c.eofEarly && len(c.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

var readerCases = []struct {
	name string
	in   string
	want []ev
}{
	{"empty", "", nil},
	{"single", "data: hello\n\n", []ev{{Raw: "data: hello\n\n", Data: "hello"}}},
	{"two in one read", "data: a\n\ndata: b\n\n", []ev{
		{Raw: "data: a\n\n", Data: "a"},
		{Raw: "data: b\n\n", Data: "b"},
	}},
	{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{
		{Raw: "data: a\r\n\r\n", Data: "a"},
		{Raw: "data: b\r\n\r\n", Data: "b"},
	}},
	{"cr", "data: a\r\rdata: b\r\r", []ev{
		{Raw: "data: a\r\r", Data: "a"},
		{Raw: "data: b\r\r", Data: "b"},
	}},
	{"mixed terminators", "data: a\r\ndata: b\rdata: c\n\r\n", []ev{
		{Raw: "data: a\r\ndata: b\rdata: c\n\r\n", Data: "a\nb\nc"},
	}},
	{"multi-line data", "data: a\ndata: b\ndata: c\n\n", []ev{{Raw: "data: a\ndata: b\ndata: c\n\n", Data: "a\nb\nc"}}},
	{"empty data lines", "data\ndata:\ndata: \n\n", []ev{{Raw: "data\ndata:\ndata: \n\n", Data: "\n\n"}}},
	{"no space", "data:a\n\n", []ev{{Raw: "data:a\n\n", Data: "a"}}},
	{"two spaces", "data:  a\n\n", []ev{{Raw: "data:  a\n\n", Data: " a"}}},
	{"data without colon", "data\n\n", []ev{{Raw: "data\n\n", Data: ""}}},
	{"colon in value", "data: {\"a\":1}\n\n", []ev{{Raw: "data: {\"a\":1}\n\n", Data: `{"a":1}`}}},
	{"comment", ": ping\n\n", []ev{{Raw: ": ping\n\n", NoData: true}}},
	{"comment inside event", "data: a\n: note\ndata: b\n\n", []ev{{Raw: "data: a\n: note\ndata: b\n\n", Data: "a\nb"}}},
	{"event and id", "event: add\nid: 7\ndata: x\n\n", []ev{{Raw: "event: add\nid: 7\ndata: x\n\n", Event: "add", Data: "x", ID: "7"}}},
	{"event last wins", "event: a\nevent: b\ndata: x\n\n", []ev{{Raw: "event: a\nevent: b\ndata: x\n\n", Event: "b", Data: "x"}}},
	{"event reset", "event: a\nevent:\ndata: x\n\n", []ev{{Raw: "event: a\nevent:\ndata: x\n\n", Data: "x"}}},
	{"id with NUL ignored", "id: 1\nid: 2\x003\ndata: x\n\n", []ev{{Raw: "id: 1\nid: 2\x003\ndata: x\n\n", Data: "x", ID: "1"}}},
	{"unknown fields", "retry: 10\nfoo: bar\ndata : x\n\n", []ev{{Raw: "retry: 10\nfoo: bar\ndata : x\n\n", NoData: true}}},
	{"partial at EOF", "data: a\n\ndata: [DONE]\n", []ev{
		{Raw: "data: a\n\n", Data: "a"},
		{Raw: "data: [DONE]\n", Data: "[DONE]"},
	}},
	{"partial unterminated line", "data: a\n\ndata: [DONE]", []ev{
		{Raw: "data: a\n\n", Data: "a"},
		{Raw: "data: [DONE]", Data: "[DONE]"},
	}},
	{"stray blank lines", "\n\r\ndata: x\n\n\n", []ev{
		{Raw: "\n", NoData: true},
		{Raw: "\r\n", NoData: true},
		{Raw: "data: x\n\n", Data: "x"},
		{Raw: "\n", NoData: true},
	}},
	{"bom", "\uFEFFdata: x\n\n\uFEFFdata: y\n\n", []ev{
		{Raw: "\uFEFFdata: x\n\n", Data: "x"},
		{Raw: "\uFEFFdata: y\n\n", NoData: true},
	}},
	{"bom then blank line", "\uFEFF\ndata: x\n\n", []ev{{Raw: "\uFEFF\ndata: x\n\n", Data: "x"}}},
	{"openai", "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n", []ev{
		{Raw: "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n", Data: `{"choices":[{"delta":{"content":"Hi"}}]}`},
		{Raw: "data: [DONE]\n\n", Data: "[DONE]"},
	}},
	{"anthropic", "event: ping\ndata: {\"type\": \"ping\"}\n\nevent: message_stop\ndata: {}\n\n", []ev{
		{Raw: "event: ping\ndata: {\"type\": \"ping\"}\n\n", Event: "ping", Data: `{"type": "ping"}`},
		{Raw: "event: message_stop\ndata: {}\n\n", Event: "message_stop", Data: "{}"},
	}},
}

func TestReader(t *testing.T) {
	readers := []struct {
		name string
		wrap func(string) io.Reader
	}{
		{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
		{"one byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
		{"data with EOF", func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) }},
		{"chunks of 3", func(s string) io.Reader { return &chunkReader{data: []byte(s), sizes: []byte{2}} }},
		{"half", func(s string) io.Reader {
			return io.MultiReader(strings.NewReader(s[:len(s)/2]), strings.NewReader(s[len(s)/2:]))
		}},
	}
	for _, tc := range readerCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := refParse(tc.in); !equal(got, tc.want) {
				t.Fatalf("reference parser disagrees with the table:\n got %v\nwant %v", got, tc.want)
			}
			for _, r := range readers {
				got, err := readAll(sse.NewReader(r.wrap(tc.in), 0))
				if err != io.EOF {
					t.Errorf("%s: error = %v, want io.EOF", r.name, err)
				}
				if r.name == "whole" {
					if !equal(got, tc.want) {
						t.Errorf("%s:\n got %v\nwant %v", r.name, got, tc.want)
					}
					continue
				}
				if got = normalize(got); !equal(got, tc.want) {
					t.Errorf("%s (normalized):\n got %v\nwant %v", r.name, got, tc.want)
				}
			}
		})
	}
}

func equal(a, b []ev) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReaderSplitCRLF pins the documented behaviour for a "\r\n" blank line
// split between reads: the event is returned without waiting for the "\n",
// which then starts the next event's Raw without being taken as a blank line.
func TestReaderSplitCRLF(t *testing.T) {
	in := "data: a\r\n\r\ndata: b\r\n\r\n"
	r := &chunkReader{data: []byte(in), sizes: []byte{9, 10}} // chunks of 10, 11, 10, ... bytes
	got, err := readAll(sse.NewReader(r, 0))
	if err != io.EOF {
		t.Fatalf("error = %v", err)
	}
	want := []ev{
		{Raw: "data: a\r\n\r", Data: "a"},
		{Raw: "\ndata: b\r\n\r", Data: "b"},
		{Raw: "\n", NoData: true},
	}
	if !equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestReaderNoReadAhead checks that Next returns an event as soon as its
// blank line has arrived, while the writer is blocked.
func TestReaderNoReadAhead(t *testing.T) {
	for _, first := range []string{"data: one\n\n", "data: one\r\n\r\n", "data: one\r\r", ": keep-alive\n\n"} {
		t.Run(fmt.Sprintf("%q", first), func(t *testing.T) {
			pr, pw := io.Pipe()
			release := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := io.WriteString(pw, first)
				if err == nil {
					<-release
					_, err = io.WriteString(pw, "data: two\n\n")
				}
				pw.Close()
				done <- err
			}()
			defer func() {
				pr.Close()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			rd := sse.NewReader(pr, 0)
			got := make(chan ev, 1)
			go func() {
				e, err := rd.Next()
				if err != nil {
					t.Error(err)
				}
				got <- toEv(e)
			}()
			select {
			case e := <-got:
				if e.Raw != first {
					t.Errorf("Raw = %q, want %q", e.Raw, first)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Next blocked waiting for data beyond the event")
			}
			close(release)
			e, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Data) != "two" {
				t.Errorf("second event Data = %q", e.Data)
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Errorf("final error = %v, want io.EOF", err)
			}
		})
	}
}

// TestReaderBufferedEventsNoRead checks that events already buffered are
// returned without further reads.
func TestReaderBufferedEventsNoRead(t *testing.T) {
	in := strings.Repeat("data: x\n\n", 50)
	cr := &chunkReader{data: []byte(in)}
	rd := sse.NewReader(cr, 0)
	for i := range 50 {
		if _, err := rd.Next(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if cr.reads != 1 {
			t.Fatalf("after event %d: %d reads, want 1", i, cr.reads)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("error = %v, want io.EOF", err)
	}
}

// readAllReady reads every event of rd like readAll, asking Ready before
// each Next and checking its answer against the reads Next then makes:
// true means Next makes none, false that it makes at least one. Ready
// itself never reads.
func readAllReady(t *testing.T, rd *sse.Reader, cr *chunkReader) ([]ev, error) {
	t.Helper()
	var evs []ev
	for {
		before := cr.reads
		ready := rd.Ready()
		if cr.reads != before {
			t.Fatalf("Ready read from the underlying reader")
		}
		if again := rd.Ready(); again != ready {
			t.Fatalf("Ready = %v, then %v without a Next", ready, again)
		}
		e, err := rd.Next()
		if read := cr.reads != before; read == ready {
			t.Fatalf("Ready = %v before event %d, but Next read: %v (error %v)", ready, len(evs), read, err)
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, toEv(e))
	}
}

// TestReaderReady checks that Ready tells whether Next will read, and that
// asking it changes no event, for every read split of the table's inputs.
func TestReaderReady(t *testing.T) {
	for _, tc := range readerCases {
		for _, sizes := range [][]byte{nil, {0}, {1, 5, 0, 63}, {7, 2}} {
			for _, eofEarly := range []bool{false, true} {
				cr := &chunkReader{data: []byte(tc.in), sizes: sizes, eofEarly: eofEarly}
				got, err := readAllReady(t, sse.NewReader(cr, 0), cr)
				if err != io.EOF {
					t.Fatalf("%s: error = %v, want io.EOF", tc.name, err)
				}
				if got = normalize(got); !equal(got, tc.want) {
					t.Fatalf("%s, sizes %v: events with Ready differ:\n got %v\nwant %v", tc.name, sizes, got, tc.want)
				}
			}
		}
	}
}

// TestReaderReadyAfterOneRead is the case a proxy batches: three events
// and half of a fourth in one read, the rest with the end of the stream.
// Ready is true before the second and third events, false before the
// fourth (the reader must wait for it), true at the end.
func TestReaderReadyAfterOneRead(t *testing.T) {
	in := "data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4"
	cr := &chunkReader{data: []byte(in + "\n\n"), sizes: []byte{byte(len(in) - 1)}, eofEarly: true}
	rd := sse.NewReader(cr, 0)
	var got []bool
	for range 4 {
		if _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		got = append(got, rd.Ready())
	}
	if want := []bool{true, true, false, true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Ready after each event = %v, want %v (the last: the end of the stream is known)", got, want)
	}
}

// A released reader returns ErrReleased; readers that follow it, reusing
// its buffer, read their own streams whole.
func TestReaderRelease(t *testing.T) {
	for i := range 20 {
		in := strings.Repeat(fmt.Sprintf("data: %d\n\n", i), 1+i*40) // up to about 8 KiB: the buffer grows
		rd := sse.NewReader(strings.NewReader(in), 0)
		got, err := readAll(rd)
		if err != io.EOF {
			t.Fatal(err)
		}
		var raw strings.Builder
		for _, e := range got {
			raw.WriteString(e.Raw)
		}
		if raw.String() != in {
			t.Fatalf("stream %d: events differ from the input", i)
		}
		rd.Release()
		if _, err := rd.Next(); err != sse.ErrReleased {
			t.Fatalf("Next after Release: %v", err)
		}
		if rd.Ready() {
			t.Fatal("a released reader is ready")
		}
		rd.Release() // twice is harmless
	}
	// Released mid-stream, with an event still buffered.
	rd := sse.NewReader(strings.NewReader("data: a\n\ndata: b\n\n"), 0)
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	rd.Release()
	if _, err := rd.Next(); err != sse.ErrReleased {
		t.Fatalf("Next after Release: %v", err)
	}
}

func TestReaderTooLarge(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		max     int
		wantN   int // events before the error
		wantErr error
	}{
		{"fits exactly", "data: 12345\n\n", 13, 1, io.EOF},
		{"one byte over", "data: 123456\n\n", 13, 0, sse.ErrEventTooLarge},
		{"second event too large", "data: 1\n\ndata: 123456789\n\n", 13, 1, sse.ErrEventTooLarge},
		{"partial fits exactly", "data: 1234567", 13, 1, io.EOF},
		{"partial over", "data: 12345678", 13, 0, sse.ErrEventTooLarge},
		{"endless line", "data: " + strings.Repeat("x", 100000), 1000, 0, sse.ErrEventTooLarge},
		{"large limit", "data: " + strings.Repeat("x", 100000) + "\n\n", 200000, 1, io.EOF},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/oneByte=%v", tc.name, oneByte), func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				rd := sse.NewReader(r, tc.max)
				got, err := readAll(rd)
				if len(got) != tc.wantN || err != tc.wantErr {
					t.Fatalf("got %d events, %v; want %d, %v", len(got), err, tc.wantN, tc.wantErr)
				}
				if _, err2 := rd.Next(); err2 != err {
					t.Errorf("error not sticky: %v then %v", err, err2)
				}
			})
		}
	}
}

func TestReaderErrors(t *testing.T) {
	boom := errors.New("boom")
	in := "data: a\n\ndata: b\n\ndata: partial"
	rd := sse.NewReader(io.MultiReader(strings.NewReader(in), iotest.ErrReader(boom)), 0)
	got, err := readAll(rd)
	if err != boom {
		t.Fatalf("error = %v, want boom", err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events before the error, want 2", len(got))
	}
	if b := string(rd.Buffered()); b != "data: partial" {
		t.Errorf("Buffered() = %q", b)
	}
	if _, err := rd.Next(); err != boom {
		t.Errorf("error not sticky: %v", err)
	}

	// Data returned together with an error is processed first.
	rd = sse.NewReader(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader("x"))), 0)
	if _, err := rd.Next(); err != iotest.ErrTimeout {
		t.Errorf("error = %v, want ErrTimeout", err)
	}

	rd = sse.NewReader(zeroReader{}, 0)
	if _, err := rd.Next(); err != io.ErrNoProgress {
		t.Errorf("error = %v, want io.ErrNoProgress", err)
	}

	rd = sse.NewReader(badReader{}, 0)
	if _, err := rd.Next(); err == nil || err == io.EOF {
		t.Errorf("error = %v for an invalid read count", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

type badReader struct{}

func (badReader) Read(p []byte) (int, error) { return len(p) + 1, nil }

// TestReaderLongLines checks that long lines and many short "\r" lines are
// handled in linear time (a quadratic scan would time out).
func TestReaderLongLines(t *testing.T) {
	const n = 4 << 20
	inputs := map[string]string{
		"long line, 1-byte reads": "data: " + strings.Repeat("x", 1<<16) + "\n\n",
		"many CR lines":           strings.Repeat("data: x\r", n/8) + "\r",
		"many LF lines":           strings.Repeat("data: x\n", n/8) + "\n",
		"long line":               "data: " + strings.Repeat("x", n) + "\n\n",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = strings.NewReader(in)
			if strings.HasPrefix(name, "long line,") {
				r = iotest.OneByteReader(r)
			}
			rd := sse.NewReader(r, 2*n)
			e, err := rd.Next()
			if err != nil {
				t.Fatal(err)
			}
			if len(e.Raw) != len(in) {
				t.Fatalf("len(Raw) = %d, want %d", len(e.Raw), len(in))
			}
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("error = %v", err)
			}
		})
	}
}

func TestEventSlicesClipped(t *testing.T) {
	rd := sse.NewReader(strings.NewReader("data: a\ndata: b\n\ndata: c\n\ndata: d\n\n"), 0)
	e1, _ := rd.Next()
	_ = append(e1.Data, "XXXX"...)
	_ = append(e1.Raw, "XXXX"...)
	e2, _ := rd.Next()
	_ = append(e2.Data, "XXXX"...)
	e3, _ := rd.Next()
	if string(e2.Raw) != "data: c\n\n" || string(e3.Raw) != "data: d\n\n" {
		t.Fatalf("appending to an event corrupted the reader: %q %q", e2.Raw, e3.Raw)
	}
}

func TestIsDone(t *testing.T) {
	tests := []struct {
		data string
		want bool
	}{
		{"[DONE]", true},
		{"[DONE] ", false},
		{" [DONE]", false},
		{"[done]", false},
		{"", false},
		{"{}", false},
	}
	for _, tc := range tests {
		if got := sse.IsDone(sse.Event{Data: []byte(tc.data)}); got != tc.want {
			t.Errorf("IsDone(%q) = %v, want %v", tc.data, got, tc.want)
		}
	}
}

var appendCases = []struct {
	data, want, parsed string
}{
	{"", "data: \n\n", ""},
	{"hello", "data: hello\n\n", "hello"},
	{"[DONE]", "data: [DONE]\n\n", "[DONE]"},
	{"a\nb", "data: a\ndata: b\n\n", "a\nb"},
	{"a\r\nb\rc", "data: a\ndata: b\ndata: c\n\n", "a\nb\nc"},
	{"a\n", "data: a\ndata: \n\n", "a\n"},
	{"\n\n", "data: \ndata: \ndata: \n\n", "\n\n"},
	{" lead", "data:  lead\n\n", " lead"},
	{"event: x\nid: 1", "data: event: x\ndata: id: 1\n\n", "event: x\nid: 1"},
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range appendCases {
		got := sse.AppendEvent([]byte("prefix"), []byte(tc.data))
		if string(got) != "prefix"+tc.want {
			t.Errorf("AppendEvent(%q) = %q, want %q", tc.data, got, "prefix"+tc.want)
		}
		checkRoundTrip(t, []byte(tc.data))
	}
}

// checkRoundTrip checks that AppendEvent produces exactly one event whose
// data is the input with line breaks normalised to "\n".
func checkRoundTrip(t *testing.T, data []byte) {
	t.Helper()
	wire := sse.AppendEvent(nil, data)
	rd := sse.NewReader(bytes.NewReader(wire), len(wire))
	e, err := rd.Next()
	if err != nil {
		t.Fatalf("AppendEvent(%q): %v", data, err)
	}
	want := strings.ReplaceAll(string(data), "\r\n", "\n")
	want = strings.ReplaceAll(want, "\r", "\n")
	if string(e.Data) != want || string(e.Raw) != string(wire) || e.Event != "" || e.ID != "" {
		t.Fatalf("AppendEvent(%q) = %q parses as %v", data, wire, toEv(e))
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("AppendEvent(%q) = %q: more than one event (%v)", data, wire, err)
	}
}

func FuzzAppendEvent(f *testing.F) {
	for _, tc := range appendCases {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkRoundTrip(t, data)
	})
}

func FuzzReader(f *testing.F) {
	for _, tc := range readerCases {
		f.Add([]byte(tc.in), []byte(nil), uint16(0))
		f.Add([]byte(tc.in), []byte{0}, uint16(0))
		f.Add([]byte(tc.in), []byte{1, 5, 0, 63}, uint16(0))
		f.Add([]byte(tc.in), []byte{128 | 3, 2}, uint16(8))
	}
	f.Fuzz(func(t *testing.T, in, splits []byte, limit uint16) {
		want := refParse(string(in))
		eofEarly := len(splits) > 0 && splits[0]&128 != 0
		cr := &chunkReader{data: in, sizes: splits, eofEarly: eofEarly}
		max := len(in) + 1
		if limit != 0 {
			max = int(limit)
		}
		rd := sse.NewReader(cr, max)
		var got []ev
		var err error
		if len(splits) > 0 && splits[0]&64 != 0 {
			got, err = readAllReady(t, rd, cr)
		} else {
			got, err = readAll(rd)
		}
		var raw strings.Builder
		for _, e := range got {
			if len(e.Raw) > max {
				t.Fatalf("event of %d bytes returned with limit %d", len(e.Raw), max)
			}
			raw.WriteString(e.Raw)
		}
		if err == sse.ErrEventTooLarge {
			if !strings.HasPrefix(string(in), raw.String()) {
				t.Fatalf("events before ErrEventTooLarge are not a prefix of the input")
			}
			return
		}
		if err != io.EOF {
			t.Fatalf("error = %v, want io.EOF", err)
		}
		if raw.String() != string(in) {
			t.Fatalf("concatenated Raw = %q, want %q", raw.String(), in)
		}
		if got = normalize(got); !equal(got, want) {
			t.Fatalf("events differ from the reference:\n got %v\nwant %v", got, want)
		}
	})
}
