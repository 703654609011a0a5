package soak

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phasegate/phasegate/bench/harness"
)

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
	if len(evs) == 0 || evs[len(evs)-1] != harness.Done {
		return "", fmt.Errorf("stream does not end with data: [DONE] (%d events, last %.80q)", len(evs), last(evs))
	}
	var b strings.Builder
	for _, ev := range evs[:len(evs)-1] {
		if ev == harness.Done {
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
	if len(evs) < 2 || evs[len(evs)-1] != harness.Done {
		return chunk{}, fmt.Errorf("stream does not end with a final frame and data: [DONE] (%d events, last %.80q)", len(evs), last(evs))
	}
	if slices.Contains(evs[:len(evs)-1], harness.Done) {
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
