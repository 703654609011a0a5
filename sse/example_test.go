package sse_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/phasegate/phasegate/sse"
)

// A proxy forwards every event byte for byte while inspecting its data.
func ExampleReader() {
	stream := ": keep-alive\n\n" +
		"data: {\"n\":1}\r\n\r\n" +
		"event: note\ndata: two\ndata: lines\n\n" +
		"data: [DONE]\n\n"
	var client bytes.Buffer

	rd := sse.NewReader(strings.NewReader(stream), 64<<10)
	for {
		e, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		client.Write(e.Raw) // forward exactly what was received
		switch {
		case sse.IsDone(e):
			fmt.Println("done")
		case len(e.Data) == 0:
			fmt.Printf("comment %q\n", e.Raw)
		default:
			fmt.Printf("event %q data %q\n", e.Event, e.Data)
		}
	}
	fmt.Println("byte-exact:", client.String() == stream)
	// Output:
	// comment ": keep-alive\n\n"
	// event "" data "{\"n\":1}"
	// event "note" data "two\nlines"
	// done
	// byte-exact: true
}

func ExampleAppendEvent() {
	var out []byte
	out = sse.AppendEvent(out, []byte(`{"choices":[]}`))
	out = sse.AppendEvent(out, []byte("two\nlines"))
	out = sse.AppendEvent(out, []byte("[DONE]"))
	fmt.Printf("%s", out)
	// Output:
	// data: {"choices":[]}
	//
	// data: two
	// data: lines
	//
	// data: [DONE]
	//
}

// flushCounter counts the writes and flushes a proxy makes to its client.
type flushCounter struct{ writes, flushes int }

func (f *flushCounter) Write(p []byte) (int, error) { f.writes++; return len(p), nil }
func (f *flushCounter) Flush()                      { f.flushes++ }

// A proxy flushes once per read of the upstream: Ready tells it that the
// next event is already at hand, so the ones received together leave
// together and none waits for the upstream's next read. Release gives the
// reader's buffer back once the stream is done.
func ExampleReader_Ready() {
	// Three events in one read, the fourth in the next.
	up := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n\ndata: c\n\n"), strings.NewReader("data: d\n\n"))
	rd := sse.NewReader(up, 0)
	defer rd.Release()
	client := &flushCounter{}
	for {
		e, err := rd.Next()
		if err != nil {
			break
		}
		client.Write(e.Raw)
		if !rd.Ready() {
			client.Flush()
		}
	}
	fmt.Printf("%d events, %d flushes\n", client.writes, client.flushes)
	// Output: 4 events, 2 flushes
}
