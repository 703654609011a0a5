package mockllm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/phasegate/phasegate/llm"
)

// chatRequest is the part of an OpenAI chat completion request the mock
// reads; other fields are accepted and ignored.
type chatRequest struct {
	Model         string        `json:"model"`
	Messages      []chatMessage `json:"messages"`
	Stream        bool          `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Tools      []chatTool      `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// chatTool is a tool offered, or the tool a tool_choice object names.
type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type usage struct {
	PromptTokens            int64              `json:"prompt_tokens"`
	CompletionTokens        int64              `json:"completion_tokens"`
	TotalTokens             int64              `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

type completionDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   usage        `json:"usage"`
}

type chatChoice struct {
	Index        int             `json:"index"`
	Message      responseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
}

type responseMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// chatToolCall is a tool call of a reply or, with Index, of a chunk, where
// the first chunk of a call has its id, type and name and the next ones
// only arguments.
type chatToolCall struct {
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type chatChunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []chunkChoice `json:"choices"`
	Usage   *usage        `json:"usage,omitempty"`
}

type chunkChoice struct {
	Index        int     `json:"index"`
	Delta        delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type delta struct {
	Role      string         `json:"role,omitempty"`
	Content   *string        `json:"content,omitempty"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
}

// chat serves POST /v1/chat/completions.
func (m *Mock) chat(w http.ResponseWriter, r *http.Request, b *behaviour) outcome {
	body, res, ok := readRequest(w, r, b, doorOpenAI)
	if !ok {
		return res
	}
	req, prompt, offer, err := parseChatRequest(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, *err)
		return outcomeCompleted
	}
	rp := m.answer(b, prompt, offer, "call_")
	id := fmt.Sprintf("chatcmpl-mock-%d", m.chatSeq.Add(1))
	created := time.Now().Unix()
	if !req.Stream {
		msg := responseMessage{Role: "assistant"}
		if rp.hasText {
			msg.Content = new(rp.text)
		}
		if rp.tool.Name != "" {
			msg.ToolCalls = []chatToolCall{{
				ID:       rp.tool.ID,
				Type:     "function",
				Function: chatFunction{Name: rp.tool.Name, Arguments: rp.tool.Arguments},
			}}
		}
		return respondJSON(w, r, b, doorOpenAI, chatCompletion{
			ID:      id,
			Object:  "chat.completion",
			Created: created,
			Model:   req.Model,
			Choices: []chatChoice{{Message: msg, FinishReason: finishReason(rp.stop)}},
			Usage:   chatUsage(rp.usage, rp.details),
		})
	}
	enc := &chatEncoder{
		tmpl:         chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: req.Model},
		includeUsage: req.StreamOptions != nil && req.StreamOptions.IncludeUsage,
		details:      rp.details,
	}
	return streamReply(w, r, b, enc, rp.events(id, req.Model, created, b.chunks))
}

// finishReason returns Chat's finish_reason for a stop reason.
func finishReason(s llm.StopReason) string {
	switch s {
	case llm.StopToolCalls:
		return "tool_calls"
	case llm.StopMaxTokens:
		return "length"
	case llm.StopRefusal:
		return "content_filter"
	}
	return "stop"
}

// chatUsage returns u as Chat's usage object; details adds the cached and
// reasoning breakdowns.
func chatUsage(u llm.Usage, details bool) usage {
	cu := usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens()}
	if details {
		cu.PromptTokensDetails = &promptDetails{CachedTokens: u.CacheReadTokens}
		cu.CompletionTokensDetails = &completionDetails{ReasoningTokens: u.ReasoningTokens}
	}
	return cu
}

// chatEncoder writes a reply's neutral events as chat completion chunks:
// a role chunk, content and tool call chunks, the finish chunk, the usage
// chunk when the request asked for it, and [DONE]. Every chunk is a copy
// of tmpl with its choices.
type chatEncoder struct {
	tmpl         chatChunk
	includeUsage bool
	details      bool
	usage        llm.Usage
	calls        map[int]int // tool_calls index by block index; absent: text
}

func (e *chatEncoder) Encode(dst []byte, ev *llm.Event) []byte {
	switch ev.Kind {
	case llm.EventStart:
		return e.chunk(dst, delta{Role: "assistant", Content: new("")}, nil)
	case llm.EventBlockStart:
		if ev.Block != llm.BlockToolCall {
			return dst
		}
		if e.calls == nil {
			e.calls = map[int]int{}
		}
		i := len(e.calls)
		e.calls[ev.Index] = i
		return e.chunk(dst, delta{ToolCalls: []chatToolCall{{
			Index: &i, ID: ev.ID, Type: "function", Function: chatFunction{Name: ev.Name},
		}}}, nil)
	case llm.EventBlockDelta:
		if i, ok := e.calls[ev.Index]; ok {
			return e.chunk(dst, delta{ToolCalls: []chatToolCall{{
				Index: &i, Function: chatFunction{Arguments: string(ev.Delta)},
			}}}, nil)
		}
		return e.chunk(dst, delta{Content: new(string(ev.Delta))}, nil)
	case llm.EventStop:
		return e.chunk(dst, delta{}, new(finishReason(ev.Stop)))
	case llm.EventUsage:
		e.usage = ev.Usage
	case llm.EventEnd:
		if e.includeUsage {
			c := e.tmpl
			c.Choices = []chunkChoice{}
			c.Usage = new(chatUsage(e.usage, e.details))
			dst = appendData(dst, c)
		}
		return append(dst, "data: [DONE]\n\n"...)
	}
	return dst
}

func (e *chatEncoder) chunk(dst []byte, d delta, finish *string) []byte {
	c := e.tmpl
	c.Choices = []chunkChoice{{Delta: d, FinishReason: finish}}
	return appendData(dst, c)
}

// appendData appends v as the data of one server-sent event.
func appendData(dst []byte, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil { // unreachable: the chunk types always marshal
		panic(err)
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, "\n\n"...)
}

// parseChatRequest decodes and validates a chat completion request and
// returns it with its prompt token count and what it says about tools.
func parseChatRequest(body []byte) (*chatRequest, int64, *toolOffer, *apiError) {
	invalid := func(param, format string, args ...any) *apiError {
		e := &apiError{Message: fmt.Sprintf(format, args...), Type: "invalid_request_error"}
		if param != "" {
			e.Param = new(param)
		}
		return e
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, 0, nil, invalid("", "We could not parse the JSON body of your request: %v", err)
	}
	if req.Model == "" {
		return nil, 0, nil, invalid("model", "you must provide a model parameter")
	}
	if len(req.Messages) == 0 {
		return nil, 0, nil, invalid("messages", "messages must be a non-empty array")
	}
	var prompt int64
	for i, msg := range req.Messages {
		n, err := contentWords(msg.Content)
		if err != nil {
			return nil, 0, nil, invalid(fmt.Sprintf("messages[%d].content", i), "messages[%d].content: %v", i, err)
		}
		prompt += int64(n)
	}
	offer := &toolOffer{answered: req.Messages[len(req.Messages)-1].Role == "tool"}
	for _, t := range req.Tools {
		if t.Type == "function" && t.Function.Name != "" {
			offer.names = append(offer.names, t.Function.Name)
		}
	}
	if err := offer.readChatChoice(req.ToolChoice); err != nil {
		return nil, 0, nil, invalid("tool_choice", "tool_choice: %v", err)
	}
	return &req, prompt, offer, nil
}

// readChatChoice reads Chat's tool_choice: "auto", "none", "required", or
// {"type":"function","function":{"name":...}}.
func (o *toolOffer) readChatChoice(raw json.RawMessage) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto":
			o.mode = llm.ToolChoiceAuto
		case "none":
			o.mode = llm.ToolChoiceNone
		case "required":
			o.mode = llm.ToolChoiceRequired
		default:
			return fmt.Errorf(`must be "auto", "none", "required" or an object, not %q`, mode)
		}
		return nil
	}
	var named chatTool
	if err := json.Unmarshal(raw, &named); err != nil || named.Function.Name == "" {
		return fmt.Errorf("an object must name a function")
	}
	o.mode, o.forced = llm.ToolChoiceTool, named.Function.Name
	return nil
}

// contentWords counts the words of a message content: a string, null, or an
// array of parts of which the "text" ones count.
func contentWords(raw json.RawMessage) (int, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return countWords(s), nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return 0, fmt.Errorf("content parts must be objects with a type: %w", err)
		}
		n := 0
		for _, p := range parts {
			if p.Type == "text" {
				n += countWords(p.Text)
			}
		}
		return n, nil
	}
	return 0, fmt.Errorf("content must be a string, null or an array of content parts")
}
