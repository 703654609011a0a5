package openai

import (
	"errors"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// NewStreamDecoder returns a decoder of a chat.completion.chunk stream.
func (Chat) NewStreamDecoder() llm.StreamDecoder { return &chatDecoder{} }

// chatDecoder turns chunks into neutral events. Chat has no block
// boundaries: a choice's text (or refusal) block opens with its first
// content and closes when something else opens or the choice finishes; a
// tool call's block opens on its first delta and stays open until the
// choice finishes, so the argument deltas of parallel calls may arrive in
// any order.
type chatDecoder struct {
	started bool
	ended   bool // a terminal event went out: nothing follows it
	choices []chatChoiceState
	next    int // next neutral block index
	arena   []byte
}

type chatChoiceState struct {
	text     int           // neutral index of the open text or refusal block, -1 if none
	kind     llm.BlockKind // its kind
	tools    []chatTool    // the tool calls seen, open until the choice finishes
	finished bool
}

// chatTool maps a Chat tool call index to its neutral block.
type chatTool struct{ index, block int }

var chunkFields = []string{"id", "model", "created", "choices", "usage", "error"}

func (d *chatDecoder) Decode(dst []llm.Event, _ string, data []byte) ([]llm.Event, error) {
	if d.ended {
		return dst, nil
	}
	if len(data) == 0 {
		return append(dst, llm.Event{Kind: llm.EventPing}), nil
	}
	if string(data) == "[DONE]" {
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventEnd}), nil
	}
	d.arena = d.arena[:0]
	var f [6][]byte
	if wire.Top(data, chunkFields, f[:]) != nil {
		return dst, errors.New("chat stream: chunk is not a JSON object")
	}
	if !wire.Absent(f[5]) {
		e := &llm.Error{Status: 500}
		readErrorObject(f[5], e)
		if n, ok := wire.Int(fieldOf(f[5], "code")); ok && n >= 400 && n < 600 {
			e.Status = int(n)
		}
		if e.Message == "" {
			e.Message = "the upstream stream reported an error"
		}
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventError, Err: e}), nil
	}
	if !d.started {
		d.started = true
		ev := llm.Event{Kind: llm.EventStart}
		ev.ID, _ = wire.StringOf(f[0])
		ev.Model, _ = wire.StringOf(f[1])
		ev.Created, _ = wire.Int(f[2])
		dst = append(dst, ev)
	}
	if a, ok := wire.ArrayOf(f[3]); ok {
		for {
			v, ok := a.Next()
			if !ok {
				break
			}
			var err error
			if dst, err = d.choice(dst, v); err != nil {
				return dst, err
			}
		}
	}
	if u, ok := chatUsage.read(f[4]); ok {
		dst = append(dst, llm.Event{Kind: llm.EventUsage, Usage: u})
	}
	return dst, nil
}

// fieldOf returns member name of the object raw, or nil.
func fieldOf(raw []byte, name string) []byte {
	var g [1][]byte
	if o, ok := wire.ObjectOf(raw); ok {
		wire.Collect(&o, []string{name}, g[:])
	}
	return g[0]
}

var choiceFields = []string{"index", "delta", "finish_reason"}

// maxChoices bounds the choices a stream may address.
const maxChoices = 128

func (d *chatDecoder) choice(dst []llm.Event, raw []byte) ([]llm.Event, error) {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return dst, errors.New("chat stream: a choice is not an object")
	}
	var g [3][]byte
	wire.Collect(&o, choiceFields, g[:])
	ci, ok := wire.Int(g[0])
	if !ok || ci < 0 || ci >= maxChoices {
		ci = 0
	}
	c := int(ci)
	for len(d.choices) <= c {
		d.choices = append(d.choices, chatChoiceState{text: -1})
	}
	if d.choices[c].finished {
		return dst, nil
	}
	if delta, ok := wire.ObjectOf(g[1]); ok {
		var h [3][]byte
		wire.Collect(&delta, []string{"content", "refusal", "tool_calls"}, h[:])
		if s, ok := wire.StrAppend(h[0], &d.arena); ok && len(s) > 0 {
			dst = d.text(dst, c, llm.BlockText, s)
		}
		if s, ok := wire.StrAppend(h[1], &d.arena); ok && len(s) > 0 {
			dst = d.text(dst, c, llm.BlockRefusal, s)
		}
		if a, ok := wire.ArrayOf(h[2]); ok {
			for {
				v, ok := a.Next()
				if !ok {
					break
				}
				var err error
				if dst, err = d.toolCall(dst, c, v); err != nil {
					return dst, err
				}
			}
		}
	}
	if s, ok := wire.Str(g[2], nil); ok {
		st := &d.choices[c]
		dst = d.closeText(dst, c)
		for _, t := range st.tools {
			dst = append(dst, llm.Event{Kind: llm.EventBlockStop, Choice: c, Index: t.block})
		}
		st.tools, st.finished = st.tools[:0], true
		dst = append(dst, llm.Event{Kind: llm.EventStop, Choice: c, Stop: stopOf(s)})
	}
	return dst, nil
}

// closeText closes choice c's open text or refusal block, if any.
func (d *chatDecoder) closeText(dst []llm.Event, c int) []llm.Event {
	st := &d.choices[c]
	if st.text < 0 {
		return dst
	}
	dst = append(dst, llm.Event{Kind: llm.EventBlockStop, Choice: c, Index: st.text})
	st.text = -1
	return dst
}

// open opens a block of choice c with a new index.
func (d *chatDecoder) open(dst []llm.Event, c int, ev llm.Event) ([]llm.Event, int) {
	ev.Kind, ev.Choice, ev.Index = llm.EventBlockStart, c, d.next
	d.next++
	return append(dst, ev), ev.Index
}

func (d *chatDecoder) text(dst []llm.Event, c int, kind llm.BlockKind, s []byte) []llm.Event {
	st := &d.choices[c]
	if st.text < 0 || st.kind != kind {
		dst = d.closeText(dst, c)
		dst, st.text = d.open(dst, c, llm.Event{Block: kind})
		st.kind = kind
	}
	return append(dst, llm.Event{Kind: llm.EventBlockDelta, Choice: c, Index: st.text, Delta: s})
}

var toolCallFields = []string{"index", "id", "function"}

// maxToolCalls bounds the tool calls of one choice.
const maxToolCalls = 1024

func (d *chatDecoder) toolCall(dst []llm.Event, c int, raw []byte) ([]llm.Event, error) {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return dst, errors.New("chat stream: a tool call delta is not an object")
	}
	var g [3][]byte
	wire.Collect(&o, toolCallFields, g[:])
	var h [2][]byte
	if fo, ok := wire.ObjectOf(g[2]); ok {
		wire.Collect(&fo, []string{"name", "arguments"}, h[:])
	}
	st := &d.choices[c]
	k, ok := wire.Int(g[0])
	if !ok {
		// Some servers leave out the index: a delta with an id starts a
		// new call, one without continues the last.
		k = int64(len(st.tools))
		if wire.Absent(g[1]) && len(st.tools) > 0 {
			k = int64(st.tools[len(st.tools)-1].index)
		}
	}
	block := -1
	for _, t := range st.tools {
		if int64(t.index) == k {
			block = t.block
		}
	}
	if block < 0 {
		if len(st.tools) >= maxToolCalls || k < 0 || k >= maxToolCalls {
			return dst, errors.New("chat stream: too many tool calls")
		}
		dst = d.closeText(dst, c)
		ev := llm.Event{Block: llm.BlockToolCall}
		ev.ID, _ = wire.StringOf(g[1])
		ev.Name, _ = wire.StringOf(h[0])
		dst, block = d.open(dst, c, ev)
		st.tools = append(st.tools, chatTool{index: int(k), block: block})
	}
	if s, ok := wire.StrAppend(h[1], &d.arena); ok && len(s) > 0 {
		dst = append(dst, llm.Event{Kind: llm.EventBlockDelta, Choice: c, Index: block, Delta: s})
	}
	return dst, nil
}

// NewStreamEncoder returns an encoder of a chat.completion.chunk stream.
// The usage chunk is written when req asked for it (IncludeUsage).
func (c Chat) NewStreamEncoder(req *llm.Request) llm.StreamEncoder {
	e := &chatEncoder{now: c.Now}
	if req != nil {
		e.model, e.includeUsage = req.Model, req.IncludeUsage
	}
	return e
}

type chatEncoder struct {
	now          func() time.Time
	includeUsage bool
	id, model    string
	created      int64
	started      bool
	done         bool
	blocks       []chatBlock
	choices      []chatEncoderChoice
	usage        llm.Usage
	hasUsage     bool
}

// chatBlock maps an open neutral block to its choice and tool call index.
type chatBlock struct {
	index, choice, tool int
	kind                llm.BlockKind
}

type chatEncoderChoice struct {
	role     bool // the role went out
	tools    int  // tool calls so far
	finished bool
}

func (e *chatEncoder) Done() bool { return e.done }

func (e *chatEncoder) Encode(b []byte, ev *llm.Event) []byte {
	if e.done || ev.Choice < 0 || ev.Choice >= maxChoices {
		return b
	}
	switch ev.Kind {
	case llm.EventStart:
		if !e.started {
			e.id, e.created = ev.ID, ev.Created
			if ev.Model != "" {
				e.model = ev.Model
			}
			b = e.start(b)
		}
	case llm.EventBlockStart:
		b = e.blockStart(b, ev)
	case llm.EventBlockDelta:
		b = e.blockDelta(b, ev)
	case llm.EventBlockStop:
		for i := range e.blocks {
			if e.blocks[i].index == ev.Index {
				e.blocks = append(e.blocks[:i], e.blocks[i+1:]...)
				break
			}
		}
	case llm.EventUsage:
		e.usage, e.hasUsage = ev.Usage, true
	case llm.EventStop:
		b = e.finish(b, ev.Choice, ev.Stop)
	case llm.EventPing:
		b = wire.Comment(b, "ping")
	case llm.EventEnd:
		b = e.start(b)
		b = e.finish(b, 0, llm.StopEnd)
		if e.includeUsage && e.hasUsage {
			b = e.chunk(b)
			b = append(b, `],"usage":`...)
			b = chatUsage.append(b, &e.usage)
			b = append(b, '}')
			b = wire.EndEvent(b)
		}
		b = e.doneEvent(b)
	case llm.EventError:
		err := ev.Err
		if err == nil {
			err = &llm.Error{Status: 500}
		}
		b = wire.Event(b, "")
		b = appendError(b, err)
		b = wire.EndEvent(b)
		b = e.doneEvent(b)
	}
	return b
}

func (e *chatEncoder) doneEvent(b []byte) []byte {
	e.done = true
	b = wire.Event(b, "")
	b = append(b, "[DONE]"...)
	return wire.EndEvent(b)
}

func (e *chatEncoder) choice(c int) *chatEncoderChoice {
	for len(e.choices) <= c {
		e.choices = append(e.choices, chatEncoderChoice{})
	}
	return &e.choices[c]
}

// start writes the first chunk, which gives the role, once.
func (e *chatEncoder) start(b []byte) []byte {
	if e.started {
		return b
	}
	e.started = true
	if e.created == 0 {
		e.created = clock(e.now).Unix()
	}
	if e.id == "" {
		e.id = "chatcmpl-gw" + strconv.FormatInt(e.created, 36)
	}
	return e.delta(b, 0, `"content":"","refusal":null`)
}

// chunk opens a chunk up to its choices array.
func (e *chatEncoder) chunk(b []byte) []byte {
	b = wire.Event(b, "")
	b = append(b, `{"id":`...)
	b = wire.AppendString(b, e.id)
	b = append(b, `,"object":"chat.completion.chunk","created":`...)
	b = wire.AppendInt(b, e.created)
	b = append(b, `,"model":`...)
	b = wire.AppendString(b, e.model)
	return append(b, `,"choices":[`...)
}

// delta writes a chunk for choice c whose delta holds the members in
// body (which ends open for the caller to complete when empty is false).
func (e *chatEncoder) delta(b []byte, c int, body string) []byte {
	b = e.openDelta(b, c)
	b = append(b, body...)
	return e.closeDelta(b)
}

func (e *chatEncoder) openDelta(b []byte, c int) []byte {
	ch := e.choice(c)
	b = e.chunk(b)
	b = append(b, `{"index":`...)
	b = wire.AppendInt(b, c)
	b = append(b, `,"delta":{`...)
	if !ch.role {
		ch.role = true
		b = append(b, `"role":"assistant",`...)
	}
	return b
}

func (e *chatEncoder) closeDelta(b []byte) []byte {
	if b[len(b)-1] == ',' {
		b = b[:len(b)-1]
	}
	b = append(b, `},"logprobs":null,"finish_reason":null}]}`...)
	return wire.EndEvent(b)
}

func (e *chatEncoder) blockStart(b []byte, ev *llm.Event) []byte {
	for i := range e.blocks {
		if e.blocks[i].index == ev.Index {
			return b
		}
	}
	switch ev.Block {
	case llm.BlockText, llm.BlockRefusal, llm.BlockToolCall:
	default:
		return b
	}
	b = e.start(b)
	ch := e.choice(ev.Choice)
	if ch.finished {
		return b
	}
	blk := chatBlock{index: ev.Index, choice: ev.Choice, kind: ev.Block}
	if ev.Block == llm.BlockToolCall {
		blk.tool = ch.tools
		ch.tools++
		b = e.openDelta(b, ev.Choice)
		b = append(b, `"tool_calls":[{"index":`...)
		b = wire.AppendInt(b, blk.tool)
		b = append(b, `,"id":`...)
		b = wire.AppendString(b, ev.ID)
		b = append(b, `,"type":"function","function":{"name":`...)
		b = wire.AppendString(b, ev.Name)
		b = append(b, `,"arguments":""}}]`...)
		b = e.closeDelta(b)
	}
	e.blocks = append(e.blocks, blk)
	return b
}

func (e *chatEncoder) blockDelta(b []byte, ev *llm.Event) []byte {
	if len(ev.Delta) == 0 {
		return b
	}
	for i := range e.blocks {
		blk := &e.blocks[i]
		if blk.index != ev.Index {
			continue
		}
		b = e.openDelta(b, blk.choice)
		switch blk.kind {
		case llm.BlockText:
			b = append(b, `"content":`...)
			b = wire.AppendBytes(b, ev.Delta)
		case llm.BlockRefusal:
			b = append(b, `"refusal":`...)
			b = wire.AppendBytes(b, ev.Delta)
		case llm.BlockToolCall:
			b = append(b, `"tool_calls":[{"index":`...)
			b = wire.AppendInt(b, blk.tool)
			b = append(b, `,"function":{"arguments":`...)
			b = wire.AppendBytes(b, ev.Delta)
			b = append(b, `}}]`...)
		}
		return e.closeDelta(b)
	}
	return b
}

// finish writes choice c's finish_reason, once, and forgets its blocks.
func (e *chatEncoder) finish(b []byte, c int, stop llm.StopReason) []byte {
	ch := e.choice(c)
	if ch.finished {
		return b
	}
	b = e.start(b)
	ch.finished = true
	kept := e.blocks[:0]
	for _, blk := range e.blocks {
		if blk.choice != c {
			kept = append(kept, blk)
		}
	}
	e.blocks = kept
	b = e.chunk(b)
	b = append(b, `{"index":`...)
	b = wire.AppendInt(b, c)
	b = append(b, `,"delta":{},"logprobs":null,"finish_reason":"`...)
	b = append(b, finishReason(stop)...)
	b = append(b, `"}]}`...)
	return wire.EndEvent(b)
}
