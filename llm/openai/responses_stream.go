package openai

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// NewStreamDecoder returns a decoder of a Responses event stream.
func (Responses) NewStreamDecoder() llm.StreamDecoder { return &responsesDecoder{} }

// responsesDecoder turns Responses events into neutral events: a message
// item's output_text and refusal parts and each function_call item are
// blocks; reasoning and other items are skipped.
type responsesDecoder struct {
	started bool
	ended   bool             // a terminal event went out: nothing follows it
	blocks  []responsesBlock // open blocks
	next    int
	calls   bool // a function call was seen
	arena   []byte
}

// responsesBlock is an open block: its output and content indexes
// (content -1 for a function call) and neutral index.
type responsesBlock struct {
	out, content, index int
}

var responsesEventFields = []string{
	"type", "response", "item", "output_index", "content_index", "delta", "part", "error", "code", "message",
}

const (
	xType = iota
	xResponse
	xItem
	xOutputIndex
	xContentIndex
	xDelta
	xPart
	xError
	xCode
	xMessage
	nResponsesEventFields
)

func (d *responsesDecoder) Decode(dst []llm.Event, name string, data []byte) ([]llm.Event, error) {
	if d.ended {
		return dst, nil
	}
	if len(data) == 0 {
		return append(dst, llm.Event{Kind: llm.EventPing}), nil
	}
	d.arena = d.arena[:0]
	var f [nResponsesEventFields][]byte
	if wire.Top(data, responsesEventFields, f[:]) != nil {
		return dst, errors.New("responses stream: event data is not a JSON object")
	}
	typ, _ := wire.Str(f[xType], nil)
	if len(typ) == 0 {
		typ = []byte(name)
	}
	out, hasOut := wire.Int(f[xOutputIndex])
	content, _ := wire.Int(f[xContentIndex])
	switch string(typ) {
	case "response.created", "response.in_progress":
		if d.started {
			return dst, nil
		}
		d.started = true
		var g [3][]byte
		if ro, ok := wire.ObjectOf(f[xResponse]); ok {
			wire.Collect(&ro, []string{"id", "model", "created_at"}, g[:])
		}
		ev := llm.Event{Kind: llm.EventStart}
		ev.ID, _ = wire.StringOf(g[0])
		ev.Model, _ = wire.StringOf(g[1])
		ev.Created, _ = wire.Int(g[2])
		return append(dst, ev), nil
	case "response.output_item.added":
		var g [7][]byte
		if io, ok := wire.ObjectOf(f[xItem]); ok {
			wire.Collect(&io, itemFields, g[:])
		}
		if t, _ := wire.Str(g[0], nil); string(t) != "function_call" || !hasOut {
			return dst, nil
		}
		d.calls = true
		ev := llm.Event{Kind: llm.EventBlockStart, Block: llm.BlockToolCall}
		ev.ID, _ = wire.StringOf(g[3])
		ev.Name, _ = wire.StringOf(g[4])
		dst = d.open(dst, int(out), -1, ev)
		if s, ok := wire.StrAppend(g[5], &d.arena); ok && len(s) > 0 {
			dst = append(dst, llm.Event{Kind: llm.EventBlockDelta, Index: d.blocks[len(d.blocks)-1].index, Delta: s})
		}
		return dst, nil
	case "response.content_part.added":
		var g [3][]byte
		if po, ok := wire.ObjectOf(f[xPart]); ok {
			wire.Collect(&po, []string{"type", "text", "refusal"}, g[:])
		}
		ev := llm.Event{Kind: llm.EventBlockStart}
		var text []byte
		switch t, _ := wire.Str(g[0], nil); string(t) {
		case "output_text":
			ev.Block, text = llm.BlockText, g[1]
		case "refusal":
			ev.Block, text = llm.BlockRefusal, g[2]
		default:
			return dst, nil
		}
		if !hasOut {
			return dst, nil
		}
		dst = d.open(dst, int(out), int(content), ev)
		if s, ok := wire.StrAppend(text, &d.arena); ok && len(s) > 0 {
			dst = append(dst, llm.Event{Kind: llm.EventBlockDelta, Index: d.blocks[len(d.blocks)-1].index, Delta: s})
		}
		return dst, nil
	case "response.output_text.delta", "response.refusal.delta":
		return d.delta(dst, int(out), int(content), f[xDelta])
	case "response.function_call_arguments.delta":
		return d.delta(dst, int(out), -1, f[xDelta])
	case "response.content_part.done":
		return d.close(dst, int(out), int(content)), nil
	case "response.output_item.done":
		// Closes the item's function call, or what content parts were left
		// open.
		for i := 0; i < len(d.blocks); {
			if d.blocks[i].out == int(out) {
				dst = d.closeAt(dst, i)
				continue
			}
			i++
		}
		return dst, nil
	case "response.completed", "response.incomplete":
		for len(d.blocks) > 0 {
			dst = d.closeAt(dst, 0)
		}
		var g [3][]byte
		if ro, ok := wire.ObjectOf(f[xResponse]); ok {
			wire.Collect(&ro, []string{"status", "incomplete_details", "usage"}, g[:])
		}
		stop := llm.StopEnd
		if string(typ) == "response.incomplete" {
			stop = finalStop([]byte(`"incomplete"`), g[1], nil)
		} else if d.calls {
			stop = llm.StopToolCalls
		}
		dst = append(dst, llm.Event{Kind: llm.EventStop, Stop: stop})
		if u, ok := responsesUsage.read(g[2]); ok {
			dst = append(dst, llm.Event{Kind: llm.EventUsage, Usage: u})
		}
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventEnd}), nil
	case "response.failed":
		e := &llm.Error{Status: 500, Type: "server_error"}
		var g [1][]byte
		if ro, ok := wire.ObjectOf(f[xResponse]); ok {
			wire.Collect(&ro, []string{"error"}, g[:])
		}
		readFailure(g[0], e)
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventError, Err: e}), nil
	case "error":
		e := &llm.Error{Status: 500, Type: "server_error"}
		if wire.KindOf(f[xError]) == wire.Obj {
			readFailure(f[xError], e)
		} else {
			e.Code, _ = wire.StringOf(f[xCode])
			e.Message, _ = wire.StringOf(f[xMessage])
			setFailureStatus(e)
		}
		if e.Message == "" {
			e.Message = "the upstream stream reported an error"
		}
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventError, Err: e}), nil
	}
	return dst, nil
}

// readFailure reads the {"code","message"} error of a failed response.
func readFailure(raw []byte, e *llm.Error) {
	if o, ok := wire.ObjectOf(raw); ok {
		var g [2][]byte
		wire.Collect(&o, []string{"code", "message"}, g[:])
		e.Code, _ = wire.StringOf(g[0])
		e.Message, _ = wire.StringOf(g[1])
	}
	setFailureStatus(e)
	if e.Message == "" {
		e.Message = "the upstream response failed"
	}
}

func setFailureStatus(e *llm.Error) {
	if e.Code == "rate_limit_exceeded" {
		e.Status = 429
	}
}

func (d *responsesDecoder) open(dst []llm.Event, out, content int, ev llm.Event) []llm.Event {
	for _, b := range d.blocks {
		if b.out == out && b.content == content {
			return dst
		}
	}
	ev.Index = d.next
	d.next++
	d.blocks = append(d.blocks, responsesBlock{out: out, content: content, index: ev.Index})
	return append(dst, ev)
}

func (d *responsesDecoder) delta(dst []llm.Event, out, content int, raw []byte) ([]llm.Event, error) {
	s, ok := wire.StrAppend(raw, &d.arena)
	if !ok {
		return dst, errors.New("responses stream: delta without its text")
	}
	if len(s) == 0 {
		return dst, nil
	}
	for _, b := range d.blocks {
		if b.out == out && b.content == content {
			return append(dst, llm.Event{Kind: llm.EventBlockDelta, Index: b.index, Delta: s}), nil
		}
	}
	return dst, nil
}

func (d *responsesDecoder) close(dst []llm.Event, out, content int) []llm.Event {
	for i, b := range d.blocks {
		if b.out == out && b.content == content {
			return d.closeAt(dst, i)
		}
	}
	return dst
}

func (d *responsesDecoder) closeAt(dst []llm.Event, i int) []llm.Event {
	dst = append(dst, llm.Event{Kind: llm.EventBlockStop, Index: d.blocks[i].index})
	d.blocks = append(d.blocks[:i], d.blocks[i+1:]...)
	return dst
}

// NewStreamEncoder returns an encoder of a Responses event stream for
// req, whose settings the response objects echo.
func (c Responses) NewStreamEncoder(req *llm.Request) llm.StreamEncoder {
	return &responsesEncoder{now: c.Now, req: req}
}

// responsesEncoder writes neutral events as Responses events. Every block
// becomes an output item of its own; done events and the final response
// repeat the full text, which the encoder keeps until the end.
type responsesEncoder struct {
	now     func() time.Time
	req     *llm.Request
	id      string
	model   string
	created int64
	seq     int64
	started bool
	done    bool
	open    []*responsesItem
	free    []*responsesItem // items whose text buffers can be reused
	items   int              // output items so far
	fin     []finishedItem   // the finished items, by output index
	itemBuf []byte           // their JSON, in the order they finished
	output  []byte           // the finished items, comma-separated, by output index
	usage   *llm.Usage
	u       llm.Usage
	stop    llm.StopReason
}

// finishedItem is the JSON of a finished output item, itemBuf[start:end].
type finishedItem struct{ out, start, end int }

type responsesItem struct {
	index, out int
	kind       llm.BlockKind
	id         string
	callID     string
	name       string
	text       []byte
}

func (e *responsesEncoder) Done() bool { return e.done }

func (e *responsesEncoder) Encode(b []byte, ev *llm.Event) []byte {
	if e.done || ev.Choice != 0 {
		return b
	}
	switch ev.Kind {
	case llm.EventStart:
		if !e.started {
			e.id, e.model, e.created = ev.ID, ev.Model, ev.Created
			b = e.start(b)
		}
	case llm.EventBlockStart:
		b = e.blockStart(b, ev)
	case llm.EventBlockDelta:
		b = e.blockDelta(b, ev)
	case llm.EventBlockStop:
		for i, it := range e.open {
			if it.index == ev.Index {
				b = e.itemDone(b, i, "completed")
				break
			}
		}
	case llm.EventUsage:
		e.u = ev.Usage
		e.usage = &e.u
	case llm.EventStop:
		e.stop = ev.Stop
	case llm.EventPing:
		b = wire.Comment(b, "ping")
	case llm.EventEnd:
		b = e.start(b)
		b = e.closeAll(b)
		status := statusOf(e.stop)
		b = e.event(b, "response."+status)
		b = append(b, `,"response":`...)
		b = e.response(b, status, nil)
		b = e.endEvent(b)
		e.done = true
	case llm.EventError:
		b = e.start(b)
		b = e.closeAll(b)
		err := ev.Err
		if err == nil {
			err = &llm.Error{Status: 500, Message: "the response failed"}
		}
		b = e.event(b, "response.failed")
		b = append(b, `,"response":`...)
		b = e.response(b, "failed", err)
		b = e.endEvent(b)
		e.done = true
	}
	return b
}

// event opens an event of type typ, through its sequence number.
func (e *responsesEncoder) event(b []byte, typ string) []byte {
	b = wire.Event(b, typ)
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","sequence_number":`...)
	b = wire.AppendInt(b, e.seq)
	e.seq++
	return b
}

func (e *responsesEncoder) endEvent(b []byte) []byte {
	return wire.EndEvent(append(b, '}'))
}

func (e *responsesEncoder) response(b []byte, status string, err *llm.Error) []byte {
	e.output = e.output[:0]
	for i, f := range e.fin {
		if i > 0 {
			e.output = append(e.output, ',')
		}
		e.output = append(e.output, e.itemBuf[f.start:f.end]...)
	}
	o := responseObject{
		id: e.id, created: e.created, model: e.model, status: status, stop: e.stop, err: err,
		output: e.output, req: e.req,
	}
	if status != "in_progress" {
		o.usage = e.usage
	}
	return appendResponseObject(b, &o)
}

func (e *responsesEncoder) start(b []byte) []byte {
	if e.started {
		return b
	}
	e.started = true
	if e.created == 0 {
		e.created = clock(e.now).Unix()
	}
	if e.id == "" {
		e.id = "resp_gw" + strconv.FormatInt(e.created, 36)
	}
	if e.model == "" && e.req != nil {
		e.model = e.req.Model
	}
	for _, typ := range []string{"response.created", "response.in_progress"} {
		b = e.event(b, typ)
		b = append(b, `,"response":`...)
		b = e.response(b, "in_progress", nil)
		b = e.endEvent(b)
	}
	return b
}

// itemRef writes the item_id and output_index members of an event about
// item it.
func (e *responsesEncoder) itemRef(b []byte, it *responsesItem) []byte {
	b = append(b, `,"item_id":`...)
	b = wire.AppendString(b, it.id)
	b = append(b, `,"output_index":`...)
	return wire.AppendInt(b, it.out)
}

func (e *responsesEncoder) blockStart(b []byte, ev *llm.Event) []byte {
	for _, it := range e.open {
		if it.index == ev.Index {
			return b
		}
	}
	switch ev.Block {
	case llm.BlockText, llm.BlockRefusal, llm.BlockToolCall:
	default:
		return b
	}
	b = e.start(b)
	var it *responsesItem
	if n := len(e.free); n > 0 {
		it, e.free = e.free[n-1], e.free[:n-1]
		*it = responsesItem{text: it.text[:0]}
	} else {
		it = &responsesItem{}
	}
	it.index, it.out, it.kind = ev.Index, e.items, ev.Block
	e.items++
	e.open = append(e.open, it)
	b = e.event(b, "response.output_item.added")
	b = append(b, `,"output_index":`...)
	b = wire.AppendInt(b, it.out)
	b = append(b, `,"item":`...)
	if ev.Block == llm.BlockToolCall {
		it.id, it.callID, it.name = itemID("fc", e.id, it.out), ev.ID, ev.Name
		b = appendFunctionCallItem(b, it.id, "in_progress", it.callID, it.name, nil)
		return e.endEvent(b)
	}
	it.id = itemID("msg", e.id, it.out)
	b = appendMessageItem(b, it.id, "in_progress", func(b []byte) []byte { return b })
	b = e.endEvent(b)
	b = e.event(b, "response.content_part.added")
	b = e.itemRef(b, it)
	b = append(b, `,"content_index":0,"part":`...)
	b = appendContentPart(b, it.kind == llm.BlockRefusal, nil)
	return e.endEvent(b)
}

func (e *responsesEncoder) blockDelta(b []byte, ev *llm.Event) []byte {
	if len(ev.Delta) == 0 {
		return b
	}
	for _, it := range e.open {
		if it.index != ev.Index {
			continue
		}
		it.text = append(it.text, ev.Delta...)
		switch it.kind {
		case llm.BlockToolCall:
			b = e.event(b, "response.function_call_arguments.delta")
			b = e.itemRef(b, it)
		case llm.BlockRefusal:
			b = e.event(b, "response.refusal.delta")
			b = e.itemRef(b, it)
			b = append(b, `,"content_index":0`...)
		default:
			b = e.event(b, "response.output_text.delta")
			b = e.itemRef(b, it)
			b = append(b, `,"content_index":0,"logprobs":[]`...)
		}
		b = append(b, `,"delta":`...)
		b = wire.AppendBytes(b, ev.Delta)
		return e.endEvent(b)
	}
	return b
}

// itemDone writes the done events of open item i, with status, and keeps
// the item for the final response.
func (e *responsesEncoder) itemDone(b []byte, i int, status string) []byte {
	it := e.open[i]
	e.open = append(e.open[:i], e.open[i+1:]...)
	mark := len(e.itemBuf)
	switch it.kind {
	case llm.BlockToolCall:
		b = e.event(b, "response.function_call_arguments.done")
		b = e.itemRef(b, it)
		b = append(b, `,"arguments":`...)
		b = wire.AppendBytes(b, it.text)
		b = e.endEvent(b)
		e.itemBuf = appendFunctionCallItem(e.itemBuf, it.id, status, it.callID, it.name, it.text)
	default:
		refusal := it.kind == llm.BlockRefusal
		if refusal {
			b = e.event(b, "response.refusal.done")
			b = e.itemRef(b, it)
			b = append(b, `,"content_index":0,"refusal":`...)
		} else {
			b = e.event(b, "response.output_text.done")
			b = e.itemRef(b, it)
			b = append(b, `,"content_index":0,"logprobs":[],"text":`...)
		}
		b = wire.AppendBytes(b, it.text)
		b = e.endEvent(b)
		b = e.event(b, "response.content_part.done")
		b = e.itemRef(b, it)
		b = append(b, `,"content_index":0,"part":`...)
		b = appendContentPart(b, refusal, it.text)
		b = e.endEvent(b)
		e.itemBuf = appendMessageItem(e.itemBuf, it.id, status, func(o []byte) []byte {
			return appendContentPart(o, refusal, it.text)
		})
	}
	b = e.event(b, "response.output_item.done")
	b = append(b, `,"output_index":`...)
	b = wire.AppendInt(b, it.out)
	b = append(b, `,"item":`...)
	b = append(b, e.itemBuf[mark:]...)
	b = e.endEvent(b)
	// The response lists its output by output index, whatever order the
	// items finished in (parallel tool calls may close out of order).
	f := finishedItem{out: it.out, start: mark, end: len(e.itemBuf)}
	at := len(e.fin)
	for at > 0 && e.fin[at-1].out > f.out {
		at--
	}
	e.fin = slices.Insert(e.fin, at, f)
	e.free = append(e.free, it)
	return b
}

// closeAll ends the items still open when the response ends: they are
// incomplete.
func (e *responsesEncoder) closeAll(b []byte) []byte {
	for len(e.open) > 0 {
		b = e.itemDone(b, 0, "incomplete")
	}
	return b
}
