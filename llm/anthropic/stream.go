package anthropic

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/internal/wire"
)

// NewStreamDecoder returns a decoder of a Messages stream.
func (Codec) NewStreamDecoder() llm.StreamDecoder { return &decoder{} }

// decoder turns Messages events into neutral events. Blocks keep their
// Messages index; thinking and other blocks the model does not carry are
// skipped with their deltas.
type decoder struct {
	started bool
	ended   bool // a terminal event went out: nothing follows it
	usage   llm.Usage
	blocks  []llm.BlockKind // by Messages index; 0: skipped or not open
	arena   []byte          // decoded text of this call's events
}

var errNoIndex = errors.New("anthropic stream: content block event without a valid index")

var eventFields = []string{"type", "message", "index", "content_block", "delta", "usage", "error"}

const (
	eType = iota
	eMessage
	eIndex
	eContentBlock
	eDelta
	eUsage
	eError
	nEventFields
)

func (d *decoder) Decode(dst []llm.Event, name string, data []byte) ([]llm.Event, error) {
	if d.ended {
		return dst, nil
	}
	if len(data) == 0 {
		return append(dst, llm.Event{Kind: llm.EventPing}), nil
	}
	d.arena = d.arena[:0]
	var f [nEventFields][]byte
	if wire.Top(data, eventFields, f[:]) != nil {
		return dst, errors.New("anthropic stream: event data is not a JSON object")
	}
	typ, _ := wire.Str(f[eType], nil)
	if len(typ) == 0 {
		typ = []byte(name)
	}
	switch string(typ) {
	case "message_start":
		return d.messageStart(dst, f[eMessage])
	case "content_block_start":
		return d.blockStart(dst, f[eIndex], f[eContentBlock])
	case "content_block_delta":
		return d.blockDelta(dst, f[eIndex], f[eDelta])
	case "content_block_stop":
		i, ok := d.index(f[eIndex])
		if !ok {
			return dst, errNoIndex
		}
		if i < len(d.blocks) && d.blocks[i] != 0 {
			d.blocks[i] = 0
			dst = append(dst, llm.Event{Kind: llm.EventBlockStop, Index: i})
		}
		return dst, nil
	case "message_delta":
		return d.messageDelta(dst, f[eDelta], f[eUsage])
	case "message_stop":
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventEnd}), nil
	case "ping":
		return append(dst, llm.Event{Kind: llm.EventPing}), nil
	case "error":
		d.ended = true
		return append(dst, llm.Event{Kind: llm.EventError, Err: streamError(f[eError])}), nil
	}
	return dst, nil
}

func (d *decoder) index(raw []byte) (int, bool) {
	n, ok := wire.Int(raw)
	if !ok || n < 0 || n > 1<<20 {
		return 0, false
	}
	return int(n), true
}

func (d *decoder) messageStart(dst []llm.Event, raw []byte) ([]llm.Event, error) {
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return dst, errors.New("anthropic stream: message_start without a message")
	}
	var g [3][]byte
	wire.Collect(&o, []string{"id", "model", "usage"}, g[:])
	if d.started {
		return dst, nil
	}
	d.started = true
	ev := llm.Event{Kind: llm.EventStart}
	ev.ID, _ = wire.StringOf(g[0])
	ev.Model, _ = wire.StringOf(g[1])
	dst = append(dst, ev)
	var c usageCounts
	if c.read(g[2]) {
		c.apply(&d.usage)
		if d.usage != (llm.Usage{}) {
			dst = append(dst, llm.Event{Kind: llm.EventUsage, Usage: d.usage})
		}
	}
	return dst, nil
}

func (d *decoder) blockStart(dst []llm.Event, rawIndex, raw []byte) ([]llm.Event, error) {
	i, ok := d.index(rawIndex)
	if !ok {
		return dst, errNoIndex
	}
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return dst, errors.New("anthropic stream: content_block_start without a content block")
	}
	var g [4][]byte
	wire.Collect(&o, []string{"type", "id", "name", "text"}, g[:])
	typ, _ := wire.Str(g[0], nil)
	ev := llm.Event{Kind: llm.EventBlockStart, Index: i}
	switch string(typ) {
	case "text":
		ev.Block = llm.BlockText
	case "tool_use":
		ev.Block = llm.BlockToolCall
		ev.ID, _ = wire.StringOf(g[1])
		ev.Name, _ = wire.StringOf(g[2])
	default:
		return dst, nil
	}
	for len(d.blocks) <= i {
		d.blocks = append(d.blocks, 0)
	}
	if d.blocks[i] != 0 {
		return dst, errors.New("anthropic stream: content block " + strconv.Itoa(i) + " started twice")
	}
	d.blocks[i] = ev.Block
	dst = append(dst, ev)
	if ev.Block == llm.BlockText {
		// A start block may carry text of its own.
		if s, ok := wire.StrAppend(g[3], &d.arena); ok && len(s) > 0 {
			dst = append(dst, llm.Event{Kind: llm.EventBlockDelta, Index: i, Delta: s})
		}
	}
	return dst, nil
}

func (d *decoder) blockDelta(dst []llm.Event, rawIndex, raw []byte) ([]llm.Event, error) {
	i, ok := d.index(rawIndex)
	if !ok {
		return dst, errNoIndex
	}
	if i >= len(d.blocks) || d.blocks[i] == 0 {
		return dst, nil
	}
	o, ok := wire.ObjectOf(raw)
	if !ok {
		return dst, errors.New("anthropic stream: content_block_delta without a delta")
	}
	var g [3][]byte
	wire.Collect(&o, []string{"type", "text", "partial_json"}, g[:])
	typ, _ := wire.Str(g[0], nil)
	var text []byte
	switch string(typ) {
	case "text_delta":
		text = g[1]
	case "input_json_delta":
		text = g[2]
	default:
		return dst, nil
	}
	s, ok := wire.StrAppend(text, &d.arena)
	if !ok {
		return dst, errors.New("anthropic stream: delta without its text")
	}
	if len(s) == 0 {
		return dst, nil
	}
	return append(dst, llm.Event{Kind: llm.EventBlockDelta, Index: i, Delta: s}), nil
}

func (d *decoder) messageDelta(dst []llm.Event, delta, usage []byte) ([]llm.Event, error) {
	var stop llm.Event
	if o, ok := wire.ObjectOf(delta); ok {
		var g [2][]byte
		wire.Collect(&o, []string{"stop_reason", "stop_sequence"}, g[:])
		if s, ok := wire.Str(g[0], nil); ok {
			stop = llm.Event{Kind: llm.EventStop, Stop: stopReason(s)}
			stop.StopSequence, _ = wire.StringOf(g[1])
		}
	}
	if stop.Kind != 0 {
		dst = append(dst, stop)
	}
	var c usageCounts
	if c.read(usage) {
		c.apply(&d.usage)
		dst = append(dst, llm.Event{Kind: llm.EventUsage, Usage: d.usage})
	}
	return dst, nil
}

// streamError reads the error object of an error event.
func streamError(raw []byte) *llm.Error {
	e := &llm.Error{}
	if o, ok := wire.ObjectOf(raw); ok {
		var g [2][]byte
		wire.Collect(&o, []string{"type", "message"}, g[:])
		e.Type, _ = wire.StringOf(g[0])
		e.Message, _ = wire.StringOf(g[1])
	}
	e.Status = statusOf(e.Type)
	if e.Message == "" {
		e.Message = "the upstream stream reported an error"
	}
	return e
}

// NewStreamEncoder returns an encoder of a Messages stream.
func (c Codec) NewStreamEncoder(req *llm.Request) llm.StreamEncoder {
	e := &encoder{now: c.Now}
	if req != nil {
		e.model = req.Model
	}
	return e
}

// encoder writes neutral events as a Messages stream. Stop and usage are
// held until the end, where message_delta carries them.
type encoder struct {
	now     func() time.Time
	model   string
	started bool
	done    bool
	blocks  []openBlock
	next    int // Messages index of the next block
	usage   llm.Usage
	stop    llm.StopReason
	stopSeq string
}

// openBlock maps a neutral block to its Messages index.
type openBlock struct {
	index, out int
	kind       llm.BlockKind
}

func (e *encoder) Done() bool { return e.done }

func (e *encoder) Encode(b []byte, ev *llm.Event) []byte {
	if e.done || ev.Choice != 0 {
		return b
	}
	switch ev.Kind {
	case llm.EventStart:
		if !e.started {
			b = e.start(b, ev.ID, ev.Model)
		}
	case llm.EventBlockStart:
		b = e.blockStart(b, ev)
	case llm.EventBlockDelta:
		b = e.blockDelta(b, ev)
	case llm.EventBlockStop:
		for i := range e.blocks {
			if e.blocks[i].index == ev.Index {
				b = e.blockStop(b, i)
				break
			}
		}
	case llm.EventUsage:
		e.usage = ev.Usage
	case llm.EventStop:
		e.stop, e.stopSeq = ev.Stop, ev.StopSequence
	case llm.EventPing:
		b = wire.Event(b, "ping")
		b = append(b, `{"type":"ping"}`...)
		b = wire.EndEvent(b)
	case llm.EventEnd:
		b = e.end(b)
	case llm.EventError:
		b = e.closeAll(b)
		b = wire.Event(b, "error")
		err := ev.Err
		if err == nil {
			err = &llm.Error{Status: 500}
		}
		b = appendError(b, err)
		b = wire.EndEvent(b)
		e.done = true
	}
	return b
}

func (e *encoder) start(b []byte, id, model string) []byte {
	e.started = true
	if id == "" {
		id = e.madeUpID()
	}
	if model == "" {
		model = e.model
	}
	b = wire.Event(b, "message_start")
	b = append(b, `{"type":"message_start","message":{"id":`...)
	b = wire.AppendString(b, id)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = wire.AppendString(b, model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":`...)
	b = appendUsage(b, &e.usage)
	b = append(b, `}}`...)
	return wire.EndEvent(b)
}

// madeUpID returns an id for a stream that gave none.
func (e *encoder) madeUpID() string {
	now := time.Now
	if e.now != nil {
		now = e.now
	}
	b := []byte("msg_gw")
	b = strconv.AppendInt(b, now().UnixNano(), 36)
	b = strconv.AppendUint(b, rand.Uint64(), 36)
	return string(b)
}

func (e *encoder) blockStart(b []byte, ev *llm.Event) []byte {
	for i := range e.blocks {
		if e.blocks[i].index == ev.Index {
			return b
		}
	}
	if ev.Block != llm.BlockText && ev.Block != llm.BlockToolCall && ev.Block != llm.BlockRefusal {
		return b
	}
	if !e.started {
		b = e.start(b, "", "")
	}
	blk := openBlock{index: ev.Index, out: e.next, kind: ev.Block}
	e.next++
	e.blocks = append(e.blocks, blk)
	b = wire.Event(b, "content_block_start")
	b = append(b, `{"type":"content_block_start","index":`...)
	b = wire.AppendInt(b, blk.out)
	if ev.Block == llm.BlockToolCall {
		b = append(b, `,"content_block":{"type":"tool_use","id":`...)
		b = wire.AppendString(b, ev.ID)
		b = append(b, `,"name":`...)
		b = wire.AppendString(b, ev.Name)
		b = append(b, `,"input":{}}}`...)
	} else {
		b = append(b, `,"content_block":{"type":"text","text":""}}`...)
	}
	return wire.EndEvent(b)
}

func (e *encoder) blockDelta(b []byte, ev *llm.Event) []byte {
	if len(ev.Delta) == 0 {
		return b
	}
	for i := range e.blocks {
		blk := &e.blocks[i]
		if blk.index != ev.Index {
			continue
		}
		b = wire.Event(b, "content_block_delta")
		b = append(b, `{"type":"content_block_delta","index":`...)
		b = wire.AppendInt(b, blk.out)
		if blk.kind == llm.BlockToolCall {
			b = append(b, `,"delta":{"type":"input_json_delta","partial_json":`...)
		} else {
			b = append(b, `,"delta":{"type":"text_delta","text":`...)
		}
		b = wire.AppendBytes(b, ev.Delta)
		b = append(b, `}}`...)
		return wire.EndEvent(b)
	}
	return b
}

// blockStop writes the end of open block i and forgets it.
func (e *encoder) blockStop(b []byte, i int) []byte {
	out := e.blocks[i].out
	e.blocks = append(e.blocks[:i], e.blocks[i+1:]...)
	b = wire.Event(b, "content_block_stop")
	b = append(b, `{"type":"content_block_stop","index":`...)
	b = wire.AppendInt(b, out)
	b = append(b, '}')
	return wire.EndEvent(b)
}

func (e *encoder) closeAll(b []byte) []byte {
	for len(e.blocks) > 0 {
		b = e.blockStop(b, 0)
	}
	return b
}

func (e *encoder) end(b []byte) []byte {
	if !e.started {
		b = e.start(b, "", "")
	}
	b = e.closeAll(b)
	b = wire.Event(b, "message_delta")
	b = append(b, `{"type":"message_delta","delta":{"stop_reason":"`...)
	b = append(b, stopReasonName(e.stop)...)
	b = append(b, `","stop_sequence":`...)
	if e.stop == llm.StopSequence && e.stopSeq != "" {
		b = wire.AppendString(b, e.stopSeq)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `},"usage":`...)
	b = appendUsage(b, &e.usage)
	b = append(b, '}')
	b = wire.EndEvent(b)
	b = wire.Event(b, "message_stop")
	b = append(b, `{"type":"message_stop"}`...)
	e.done = true
	return wire.EndEvent(b)
}
