package aimoderation

import (
	"context"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/phasegate/phasegate/llm"
	"github.com/phasegate/phasegate/llm/openai"
)

// pattern is a deny pattern compiled for whole texts and for the windows of
// realtime stream checks. A window that does not start at the start of its
// text has one character of context before it, and one that does not end at
// the end of the stream has one after it: a match may not take in a context
// character, but sees it as its neighbour, so that \b, ^ and $ at the
// window's edges mean what they mean in the whole text.
type pattern struct {
	whole  *regexp.Regexp // P
	before *regexp.Regexp // (?s:.)(?:P)
	after  *regexp.Regexp // (?:P)(?s:.)
	both   *regexp.Regexp // (?s:.)(?:P)(?s:.)
	// reach is how many characters a window takes in before the end of
	// the previous check: the longest match P can make (in characters),
	// or stream_check_cache_size when that has no bound (or is over
	// maxBoundedReach).
	reach int
	// lag is how many characters of a text may be sent unchecked:
	// stream_check_cache_size - reach, so that a match plus what follows
	// it before a check stays within stream_check_cache_size.
	lag int
	// pre skips the regexp on a text that cannot hold a match.
	pre prefilter
}

// maxBoundedReach is the longest match of a pattern that windows take in
// whole, however small stream_check_cache_size is.
const maxBoundedReach = 1 << 16

func newPattern(re *regexp.Regexp, cacheSize int) pattern {
	s := re.String()
	p := pattern{
		whole:  re,
		before: regexp.MustCompile(`(?s:.)(?:` + s + `)`),
		after:  regexp.MustCompile(`(?:` + s + `)(?s:.)`),
		both:   regexp.MustCompile(`(?s:.)(?:` + s + `)(?s:.)`),
		reach:  cacheSize,
		pre:    newPrefilter(s),
	}
	if n := longestMatch(s); n != unbounded && n <= maxBoundedReach {
		p.reach = n
	}
	p.lag = max(cacheSize-p.reach, 0)
	return p
}

// pick returns the variant for a window with context before and/or after.
func (p *pattern) pick(before, after bool) *regexp.Regexp {
	switch {
	case before && after:
		return p.both
	case before:
		return p.before
	case after:
		return p.after
	}
	return p.whole
}

// unbounded stands for a match length without bound.
const unbounded = -1

// longestMatch returns the most characters a match of the valid RE2
// pattern s can span, or unbounded.
func longestMatch(s string) int {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return unbounded
	}
	return maxRunes(re)
}

// maxLen caps the lengths maxRunes adds and multiplies: anything longer
// is as good as unbounded to a window.
const maxLen = 1 << 30

func maxRunes(re *syntax.Regexp) int {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		return 1
	case syntax.OpCapture, syntax.OpQuest:
		return maxRunes(re.Sub[0])
	case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		n := maxRunes(re.Sub[0])
		switch {
		case n == 0:
			return 0
		case n == unbounded || re.Op != syntax.OpRepeat || re.Max < 0:
			return unbounded
		}
		return capLen(n * min(re.Max, maxLen))
	case syntax.OpConcat, syntax.OpAlternate:
		total := 0
		for _, sub := range re.Sub {
			n := maxRunes(sub)
			switch {
			case n == unbounded:
				return unbounded
			case re.Op == syntax.OpConcat:
				total = capLen(total + n)
			default:
				total = max(total, n)
			}
		}
		return total
	}
	return 0 // empty-width assertions, empty match, no match
}

func capLen(n int) int {
	if n < 0 || n > maxLen {
		return unbounded
	}
	return n
}

// maxTexts bounds the texts of one response moderated separately
// (choices × fields × tool calls): an upstream does not choose how much
// state a response holds.
const maxTexts = 1024

// textKey identifies one text of a response.
type textKey struct {
	choice, tool int
	kind         openai.TextKind
}

// text is one text of a response: a choice's content, refusal or
// reasoning, or a tool call's arguments. Whole, it holds all of the text;
// in realtime mode, only the tail that later checks still need.
type text struct {
	key  textKey
	buf  []byte // the text from base on
	base int    // offset of buf[0] in the text
	// done[i]: every match of pattern i ending at or before it has been
	// looked for (realtime).
	done []int
	// seen: the endpoint has seen the text up to it; pending characters
	// follow (realtime).
	seen    int
	pending int
	dirty   bool // it grew since the previous check
}

func (t *text) end() int { return t.base + len(t.buf) }

// back returns the offset in t.buf of the position n characters before the
// text's offset at, or 0.
func (t *text) back(at, n int) int {
	i := at - t.base
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRune(t.buf[:i])
		i -= size
	}
	return max(i, 0)
}

// textFor returns the text for k, creating it (for n patterns), or nil when
// the response already has maxTexts texts.
func (st *state) textFor(k textKey, n int) *text {
	if st.index != nil {
		if t := st.index[k]; t != nil {
			return t
		}
	} else {
		for _, t := range st.texts {
			if t.key == k {
				return t
			}
		}
	}
	if len(st.texts) == maxTexts {
		st.flag(reasonTooMany)
		return nil
	}
	t := &text{key: k, done: make([]int, n)}
	st.texts = append(st.texts, t)
	const linear = 8 // texts looked up by a linear search
	switch {
	case st.index != nil:
		st.index[k] = t
	case len(st.texts) > linear:
		st.index = make(map[textKey]*text, 2*len(st.texts))
		for _, t := range st.texts {
			st.index[t.key] = t
		}
	}
	return t
}

// Why a response is flagged without a check (see state.flagged).
const (
	reasonTooMany   = "the response has too many choices and tool calls to moderate each"
	reasonAmbiguous = "the response names a moderated field twice in an object: clients may read different texts"
)

// flag flags the response without a check, for reason.
func (st *state) flag(reason string) {
	if st.flagged == "" {
		st.flagged = reason
	}
}

// collect adds the texts of a response body or stream event to st.
func (p *Plugin) collect(st *state, data []byte, stream bool) {
	if st.proto != "" && st.proto != llm.OpenAIChat {
		p.collectNeutral(st, data, stream)
		return
	}
	scratch, ambiguous := openai.EachText(data, st.scratch, func(rt openai.ResponseText) {
		t := st.textFor(textKey{choice: rt.Choice, tool: rt.Tool, kind: rt.Kind}, len(p.patterns))
		if t == nil {
			return
		}
		t.buf = append(t.buf, rt.Text...)
		t.dirty = true
		if p.api != nil {
			t.pending += utf8.RuneCount(rt.Text)
		}
	})
	st.scratch = scratch
	if ambiguous {
		st.flag(reasonAmbiguous)
	}
}

// checkWhole checks each whole text: a non-streamed response, or a stream
// at its end in final_packet mode. The patterns see each text on its own;
// the endpoint gets one input per text.
func (p *Plugin) checkWhole(ctx context.Context, st *state) (bool, error) {
	if st.flagged != "" {
		return true, nil
	}
	for _, t := range st.texts {
		st.scanned += len(t.buf)
		if p.match(t.buf) {
			return true, nil
		}
	}
	if p.api == nil || len(st.texts) == 0 {
		return false, nil
	}
	inputs := make([]string, len(st.texts))
	for i, t := range st.texts {
		inputs[i] = string(t.buf)
	}
	return p.api.flagged(ctx, inputs)
}

func (p *Plugin) match(text []byte) bool {
	for _, pat := range p.patterns {
		if mayMatch(&pat.pre, text) && pat.whole.Match(text) {
			return true
		}
	}
	return false
}

// checkRealtime checks a stream's texts after an event, before the event is
// sent (see the package documentation): each pattern on the window of each
// text that grew (of every text at the end) when it is due, then, when
// enough new text has come, the endpoint.
func (p *Plugin) checkRealtime(ctx context.Context, st *state, final bool) (bool, error) {
	if st.flagged != "" {
		return true, nil
	}
	for _, t := range st.texts {
		if (t.dirty || final) && p.scanWindows(st, t, final) {
			return true, nil
		}
	}
	hit, err := p.askEndpoint(ctx, st, final)
	for _, t := range st.texts {
		if t.dirty {
			p.trim(t)
			t.dirty = false
		}
	}
	return hit, err
}

// scanWindows looks for a match of each pattern that ends after its
// t.done, when sending the text unchecked would put more than the
// pattern's lag after t.done (always at the end). Before the end of the
// stream, a match must end before the text's last character, which it sees
// as its neighbour.
func (p *Plugin) scanWindows(st *state, t *text, final bool) bool {
	end := t.end()
	checkEnd := end
	if !final {
		_, size := utf8.DecodeLastRune(t.buf)
		checkEnd -= size
	}
	for i := range p.patterns {
		pat, done := &p.patterns[i], t.done[i]
		if checkEnd <= done || (!final && end-done <= pat.lag) {
			continue // nothing to check, or not yet due (lag counts bytes: at least the characters)
		}
		from := t.back(done, pat.reach)
		before := t.base+from > 0
		if before {
			_, size := utf8.DecodeLastRune(t.buf[:from])
			from -= size
		}
		st.scanned += len(t.buf) - from
		if w := t.buf[from:]; mayMatch(&pat.pre, w) && pat.pick(before, !final).Match(w) {
			return true
		}
		t.done[i] = checkEnd
	}
	return false
}

// askEndpoint asks the endpoint about each text with at least
// stream_check_cache_size new characters (with any at the end), from
// endpointOverlap characters before what it saw of it.
func (p *Plugin) askEndpoint(ctx context.Context, st *state, final bool) (bool, error) {
	if p.api == nil {
		return false, nil
	}
	var inputs []string
	for _, t := range st.texts {
		if t.pending == 0 || (!final && t.pending < p.cacheSize) {
			continue
		}
		in := t.buf[t.back(t.seen, endpointOverlap):]
		st.scanned += len(in)
		inputs = append(inputs, string(in))
		t.seen, t.pending = t.end(), 0
	}
	if len(inputs) == 0 {
		return false, nil
	}
	return p.api.flagged(ctx, inputs)
}

// trim drops the start of t.buf that no later check needs: a pattern needs
// its reach before its t.done, and one character of context; the endpoint
// needs endpointOverlap characters before t.seen. Dropping only once the
// dead part is half of the buffer keeps the copying linear.
func (p *Plugin) trim(t *text) {
	keep := len(t.buf)
	for i := range p.patterns {
		keep = min(keep, t.back(t.done[i], p.patterns[i].reach+1))
	}
	if p.api != nil {
		keep = min(keep, t.back(t.seen, endpointOverlap))
	}
	if keep == 0 || keep < len(t.buf)/2 {
		return
	}
	n := copy(t.buf, t.buf[keep:])
	t.buf = t.buf[:n]
	t.base += keep
}
