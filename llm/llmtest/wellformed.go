// Package llmtest checks LLM streams against their protocol's rules,
// independently of the codecs in llm/openai and llm/anthropic: for tests
// of code that writes or forwards a stream (codecs, translators, a door's
// stream endings; see docs/protocols.md).
package llmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/sse"
)

// WellFormed checks a stream written for protocol p against that
// protocol's rules, independently of the codecs: blocks opened are
// closed, indexes are dense, and exactly one terminal event ends it.
func WellFormed(p llm.Protocol, stream []byte) error {
	r := sse.NewReader(bytes.NewReader(stream), 0)
	var check func(name string, data []byte) error
	var done func() error
	switch p {
	case llm.AnthropicMessages:
		check, done = anthropicRules()
	case llm.OpenAIChat:
		check, done = chatRules()
	case llm.OpenAIResponses:
		check, done = responsesRules()
	}
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return done()
		}
		if err != nil {
			return err
		}
		if len(ev.Data) == 0 {
			continue // a comment or blank line
		}
		if err := check(ev.Event, ev.Data); err != nil {
			return fmt.Errorf("%w (event %q: %s)", err, ev.Event, ev.Data)
		}
	}
}

func anthropicRules() (func(string, []byte) error, func() error) {
	started, deltaSeen, ended := false, false, false
	open := map[int]string{} // open block index -> its type
	blocks := 0
	// The delta types each block type takes.
	deltas := map[string][]string{
		"text": {"text_delta", "citations_delta"}, "tool_use": {"input_json_delta"},
		"thinking": {"thinking_delta", "signature_delta"},
	}
	check := func(name string, data []byte) error {
		var ev struct {
			Type         string `json:"type"`
			Index        int    `json:"index"`
			ContentBlock struct {
				Type string `json:"type"`
			} `json:"content_block"`
			Delta struct {
				Type string `json:"type"`
			} `json:"delta"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		if ev.Type != name {
			return fmt.Errorf("event name %q, data type %q", name, ev.Type)
		}
		if ended {
			return fmt.Errorf("event after the end")
		}
		if !started && ev.Type != "message_start" && ev.Type != "error" && ev.Type != "ping" {
			return fmt.Errorf("%s before message_start", ev.Type)
		}
		switch ev.Type {
		case "message_start":
			if started {
				return fmt.Errorf("second message_start")
			}
			started = true
		case "content_block_start":
			if ev.Index != blocks || deltaSeen {
				return fmt.Errorf("block %d started, want %d (or after message_delta)", ev.Index, blocks)
			}
			blocks++
			open[ev.Index] = ev.ContentBlock.Type
		case "content_block_delta", "content_block_stop":
			typ, ok := open[ev.Index]
			if !ok {
				return fmt.Errorf("%s for block %d, which is not open", ev.Type, ev.Index)
			}
			if ev.Type == "content_block_stop" {
				delete(open, ev.Index)
			} else if want, known := deltas[typ]; known && !slices.Contains(want, ev.Delta.Type) {
				return fmt.Errorf("a %s in block %d, a %s block", ev.Delta.Type, ev.Index, typ)
			}
		case "message_delta":
			if deltaSeen || len(open) > 0 {
				return fmt.Errorf("message_delta twice or with blocks open")
			}
			deltaSeen = true
		case "message_stop":
			if !deltaSeen {
				return fmt.Errorf("message_stop without message_delta")
			}
			ended = true
		case "error":
			if len(open) > 0 {
				return fmt.Errorf("error with blocks open")
			}
			ended = true
		}
		return nil
	}
	return check, func() error {
		if !ended {
			return fmt.Errorf("no message_stop or error at the end")
		}
		return nil
	}
}

func chatRules() (func(string, []byte) error, func() error) {
	ended, errored, usage := false, false, false
	type choice struct {
		finished bool
		tools    int
	}
	choices := map[int]*choice{}
	check := func(name string, data []byte) error {
		if ended {
			return fmt.Errorf("event after [DONE]")
		}
		if string(data) == "[DONE]" {
			ended = true
			return nil
		}
		if errored {
			return fmt.Errorf("an error chunk is not followed by [DONE]")
		}
		var chunk struct {
			Object  string          `json:"object"`
			Error   json.RawMessage `json:"error"`
			Usage   json.RawMessage `json:"usage"`
			Choices []struct {
				Index int `json:"index"`
				Delta struct {
					ToolCalls []struct {
						Index    int     `json:"index"`
						ID       *string `json:"id"`
						Function struct {
							Name *string `json:"name"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(data, &chunk); err != nil {
			return err
		}
		if chunk.Error != nil {
			errored = true
			return nil
		}
		if chunk.Object != "chat.completion.chunk" {
			return fmt.Errorf("object %q", chunk.Object)
		}
		if usage {
			return fmt.Errorf("a chunk after the usage chunk")
		}
		if len(chunk.Usage) > 0 && string(chunk.Usage) != "null" {
			usage = true
		}
		for _, c := range chunk.Choices {
			ch := choices[c.Index]
			if ch == nil {
				ch = &choice{}
				choices[c.Index] = ch
			}
			if ch.finished {
				return fmt.Errorf("choice %d goes on after its finish_reason", c.Index)
			}
			for _, tc := range c.Delta.ToolCalls {
				switch {
				case tc.Index == ch.tools:
					if tc.ID == nil || tc.Function.Name == nil {
						return fmt.Errorf("tool call %d starts without id and name", tc.Index)
					}
					ch.tools++
				case tc.Index > ch.tools:
					return fmt.Errorf("tool call %d skips an index", tc.Index)
				}
			}
			if c.FinishReason != nil {
				ch.finished = true
			}
		}
		return nil
	}
	return check, func() error {
		if !ended {
			return fmt.Errorf("no [DONE] at the end")
		}
		return nil
	}
}

func responsesRules() (func(string, []byte) error, func() error) {
	seq, items := 0, 0
	ended := false
	open := map[int]string{}     // output index -> item type
	parts := map[[2]int]string{} // open content parts -> text so far
	texts := map[int]string{}    // function call arguments so far
	doneIDs := map[int]string{}  // output index -> the id of the item done
	check := func(name string, data []byte) error {
		var ev struct {
			Type         string          `json:"type"`
			Seq          *int            `json:"sequence_number"`
			OutputIndex  int             `json:"output_index"`
			ContentIndex int             `json:"content_index"`
			Delta        string          `json:"delta"`
			Text         *string         `json:"text"`
			Refusal      *string         `json:"refusal"`
			Arguments    *string         `json:"arguments"`
			Item         json.RawMessage `json:"item"`
			Response     *struct {
				Output []json.RawMessage `json:"output"`
			} `json:"response"`
		}
		if err := json.Unmarshal(data, &ev); err != nil {
			return err
		}
		if ev.Type != name {
			return fmt.Errorf("event name %q, data type %q", name, ev.Type)
		}
		if ended {
			return fmt.Errorf("event after the terminal event")
		}
		if ev.Seq == nil || *ev.Seq != seq {
			return fmt.Errorf("sequence_number %v, want %d", ev.Seq, seq)
		}
		seq++
		if seq == 1 && ev.Type != "response.created" {
			return fmt.Errorf("first event %s", ev.Type)
		}
		// response.created and response.in_progress open the stream, once.
		if (ev.Type == "response.created" && seq != 1) || (ev.Type == "response.in_progress" && seq != 2) {
			return fmt.Errorf("%s as event %d", ev.Type, seq-1)
		}
		key := [2]int{ev.OutputIndex, ev.ContentIndex}
		switch ev.Type {
		case "response.output_item.added":
			if ev.OutputIndex != items {
				return fmt.Errorf("item %d added, want %d", ev.OutputIndex, items)
			}
			var item struct{ Type string }
			_ = json.Unmarshal(ev.Item, &item)
			open[items] = item.Type
			items++
		case "response.content_part.added":
			if open[ev.OutputIndex] != "message" {
				return fmt.Errorf("content part of item %d, which is no open message", ev.OutputIndex)
			}
			parts[key] = ""
		case "response.output_text.delta", "response.refusal.delta":
			text, ok := parts[key]
			if !ok {
				return fmt.Errorf("delta for a content part that is not open")
			}
			parts[key] = text + ev.Delta
		case "response.output_text.done", "response.refusal.done":
			done := ev.Text
			if done == nil {
				done = ev.Refusal
			}
			if text, ok := parts[key]; !ok || done == nil || *done != text {
				return fmt.Errorf("done text %v, deltas made %q", done, text)
			}
		case "response.content_part.done":
			if _, ok := parts[key]; !ok {
				return fmt.Errorf("content part done twice or never added")
			}
			delete(parts, key)
		case "response.function_call_arguments.delta":
			if open[ev.OutputIndex] != "function_call" {
				return fmt.Errorf("arguments for item %d, which is no open function call", ev.OutputIndex)
			}
			texts[ev.OutputIndex] += ev.Delta
		case "response.function_call_arguments.done":
			if ev.Arguments == nil || *ev.Arguments != texts[ev.OutputIndex] {
				return fmt.Errorf("done arguments %v, deltas made %q", ev.Arguments, texts[ev.OutputIndex])
			}
		case "response.output_item.done":
			if _, ok := open[ev.OutputIndex]; !ok {
				return fmt.Errorf("item %d done twice or never added", ev.OutputIndex)
			}
			for k := range parts {
				if k[0] == ev.OutputIndex {
					return fmt.Errorf("item %d done with a content part open", ev.OutputIndex)
				}
			}
			delete(open, ev.OutputIndex)
			doneIDs[ev.OutputIndex] = itemID(ev.Item)
		case "response.completed", "response.incomplete", "response.failed":
			if len(open) > 0 {
				return fmt.Errorf("%s with items open", ev.Type)
			}
			if ev.Response == nil || len(ev.Response.Output) != items {
				return fmt.Errorf("%s without all %d items in its output", ev.Type, items)
			}
			// The output lists the items by output index.
			for i, raw := range ev.Response.Output {
				if id := itemID(raw); id != doneIDs[i] {
					return fmt.Errorf("%s lists item %q at output index %d, where item %q was done", ev.Type, id, i, doneIDs[i])
				}
			}
			ended = true
		}
		return nil
	}
	return check, func() error {
		if !ended {
			return fmt.Errorf("no terminal event")
		}
		return nil
	}
}

// itemID is the id of a Responses output item.
func itemID(raw json.RawMessage) string {
	var item struct{ ID string }
	_ = json.Unmarshal(raw, &item)
	return item.ID
}
