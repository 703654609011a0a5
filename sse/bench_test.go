package sse_test

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/phasegate/phasegate/sse"
)

// openAIChunk is a typical chat.completion.chunk event.
const openAIChunk = `data: {"id":"chatcmpl-AbCdEfGhIjKlMnOpQrStUvWxYz012","object":"chat.completion.chunk","created":1731000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"

// cycleReader returns its data over and over, in reads of at most size bytes.
type cycleReader struct {
	data []byte
	off  int
	size int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	if c.size > 0 && len(p) > c.size {
		p = p[:c.size]
	}
	n := 0
	for n < len(p) {
		m := copy(p[n:], c.data[c.off:])
		n += m
		c.off = (c.off + m) % len(c.data)
	}
	return n, nil
}

// BenchmarkReaderNext measures the steady-state cost of one event.
func BenchmarkReaderNext(b *testing.B) {
	events := map[string]string{
		"openai":     openAIChunk,
		"crlf":       strings.ReplaceAll(openAIChunk, "\n", "\r\n"),
		"multi-line": "event: message\nid: 42\ndata: line one\ndata: line two\ndata: line three\n\n",
	}
	for _, name := range []string{"openai", "crlf", "multi-line"} {
		for _, size := range []int{0, 64} {
			b.Run(fmt.Sprintf("%s/read=%d", name, size), func(b *testing.B) {
				data := []byte(events[name])
				rd := sse.NewReader(&cycleReader{data: bytes.Repeat(data, 8), size: size}, 0)
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := rd.Next(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkReaderStream measures a whole 200-event stream including the
// Reader's allocation.
func BenchmarkReaderStream(b *testing.B) {
	stream := []byte(strings.Repeat(openAIChunk, 200) + "data: [DONE]\n\n")
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	br := bytes.NewReader(stream)
	for b.Loop() {
		br.Reset(stream)
		rd := sse.NewReader(br, 0)
		for {
			e, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if sse.IsDone(e) {
				continue
			}
		}
	}
}

func BenchmarkAppendEvent(b *testing.B) {
	data := []byte(openAIChunk[len("data: ") : len(openAIChunk)-2])
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		buf = sse.AppendEvent(buf[:0], data)
	}
}
