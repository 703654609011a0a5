package soak

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// doneData is the data of the event that ends an OpenAI stream.
const doneData = "[DONE]"

// sseReader reads the data of server-sent events.
type sseReader struct{ r *bufio.Reader }

func newSSEReader(r io.Reader) *sseReader { return &sseReader{bufio.NewReader(r)} }

// next returns the data of the next event (its data lines joined by "\n").
// It returns io.EOF at a clean end of the stream and io.ErrUnexpectedEOF
// when the stream ends inside an event.
func (s *sseReader) next() (string, error) {
	var data []string
	seen := false
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				if seen || line != "" {
					return "", io.ErrUnexpectedEOF
				}
				return "", io.EOF
			}
			return "", err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if seen {
				return strings.Join(data, "\n"), nil
			}
		case strings.HasPrefix(line, ":"): // a comment
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
			seen = true
		default: // event:, id:, retry: carry nothing the soak checks
			seen = true
		}
	}
}

// readEvents reads events until the end of the stream. It returns those it
// read and the error that ended the stream, nil for a clean end.
func readEvents(r io.Reader) ([]string, error) {
	s := newSSEReader(r)
	var evs []string
	for {
		ev, err := s.next()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// chunk is the part of a chat.completion(.chunk) or error body the
// scenarios check.
type chunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Error *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
}

func parseChunk(data string) (chunk, error) {
	var c chunk
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return c, fmt.Errorf("event is not JSON: %v: %.120q", err, data)
	}
	return c, nil
}

// streamText checks that evs is a complete OpenAI stream (chunks, then
// exactly one [DONE] at the end) and returns the concatenated content.
func streamText(evs []string) (string, error) {
	if len(evs) == 0 || evs[len(evs)-1] != doneData {
		return "", fmt.Errorf("stream does not end with data: [DONE] (%d events, last %.80q)", len(evs), last(evs))
	}
	var b strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		if ev == doneData {
			return "", errors.New("data: [DONE] before the end of the stream")
		}
		c, err := parseChunk(ev)
		if err != nil {
			return "", err
		}
		if c.Error != nil {
			return "", fmt.Errorf("error event in the stream: %s", c.Error.Message)
		}
		if c.Object != "chat.completion.chunk" {
			return "", fmt.Errorf("event object %q, want chat.completion.chunk", c.Object)
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Delta.Content)
		}
	}
	return b.String(), nil
}

// finalFrame checks that evs ends with a final frame and [DONE] and returns
// the final frame's parsed chunk.
func finalFrame(evs []string) (chunk, error) {
	if len(evs) < 2 || evs[len(evs)-1] != doneData {
		return chunk{}, fmt.Errorf("stream does not end with a final frame and data: [DONE] (%d events, last %.80q)", len(evs), last(evs))
	}
	if slices.Contains(evs[:len(evs)-1], doneData) {
		return chunk{}, errors.New("data: [DONE] before the end of the stream")
	}
	return parseChunk(evs[len(evs)-2])
}

func last(evs []string) string {
	if len(evs) == 0 {
		return ""
	}
	return evs[len(evs)-1]
}
