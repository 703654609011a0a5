package mockllm

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/anthropic"
)

// messages serves POST /v1/messages, Anthropic Messages, with the reply
// the chat door would give the same request, written by the llm/anthropic
// codec.
func (m *Mock) messages(w http.ResponseWriter, r *http.Request, b *behaviour) outcome {
	req, prompt, res, ok := readMessagesRequest(w, r, b, false)
	if !ok {
		return res
	}
	rp := m.answer(b, prompt, messagesOffer(req), "toolu_")
	id := fmt.Sprintf("msg_mock_%d", m.msgSeq.Add(1))
	codec := anthropic.Codec{}
	if !req.Stream {
		return respondJSON(w, r, b, doorAnthropic, codec.EncodeResponse(&llm.Response{
			ID:      id,
			Model:   req.Model,
			Choices: []llm.Choice{{Parts: rp.parts(), Stop: rp.stop}},
			Usage:   &rp.usage,
		}, req))
	}
	return streamReply(w, r, b, codec.NewStreamEncoder(req), rp.events(id, req.Model, 0, b.chunks))
}

// countTokens serves POST /v1/messages/count_tokens: the input tokens
// /v1/messages would report for the same request.
func (m *Mock) countTokens(w http.ResponseWriter, r *http.Request, b *behaviour) outcome {
	_, prompt, res, ok := readMessagesRequest(w, r, b, true)
	if !ok {
		return res
	}
	if b.hasPromptTokens {
		prompt = b.promptTokens
	}
	return respondJSON(w, r, b, doorAnthropic, anthropic.EncodeCountTokensResponse(prompt))
}

// readMessagesRequest reads, decodes and validates a Messages request (a
// count_tokens one when count is true, which needs no max_tokens) and
// returns it with its prompt token count. On failure it has written the
// reply and returns false with the outcome.
func readMessagesRequest(w http.ResponseWriter, r *http.Request, b *behaviour, count bool) (*llm.Request, int64, outcome, bool) {
	body, res, ok := readRequest(w, r, b, doorAnthropic)
	if !ok {
		return nil, 0, res, false
	}
	req, err := anthropic.Codec{}.DecodeRequest(body)
	var e *llm.Error
	switch {
	case errors.As(err, &e):
	case err != nil:
		e = llm.InvalidRequest("%v", err)
	case req.Model == "":
		e = llm.FieldError("model", "Field required")
	case len(req.Messages) == 0:
		e = llm.FieldError("messages", "at least one message is required")
	case !count && req.MaxTokens < 1:
		e = llm.FieldError("max_tokens", "Field required: an integer >= 1")
	default:
		return req, requestWords(req), outcomeCompleted, true
	}
	writeJSONError(w, http.StatusBadRequest, anthropic.Codec{}.EncodeError(e))
	return nil, 0, outcomeCompleted, false
}

// messagesOffer reads what a Messages request says about tools. Tools
// with a type (Anthropic's server and client tools) are not called.
func messagesOffer(req *llm.Request) *toolOffer {
	o := &toolOffer{mode: req.ToolChoice.Mode, forced: req.ToolChoice.Name}
	for i := range req.Tools {
		if t := &req.Tools[i]; t.Type == "" && t.Name != "" {
			o.names = append(o.names, t.Name)
		}
	}
	if last := req.Messages[len(req.Messages)-1]; last.Role == llm.RoleUser {
		for i := range last.Parts {
			if last.Parts[i].Kind == llm.PartToolResult {
				o.answered = true
			}
		}
	}
	return o
}
