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
