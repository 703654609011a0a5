package aimoderation

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/phasegate/phasegate/pluginsdk"
)

// TestRealtimeWorkIsLinear streams 1 KiB, then 256 KiB, of text through
// the realtime checks and counts the bytes given to the patterns: per byte
// of text, that work must stay under a bound that does not depend on the
// length of the stream, and each text keeps a bounded tail, not the whole
// stream.
func TestRealtimeWorkIsLinear(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []string
		piece    string
		large    int
	}{
		{"bounded pattern, words", []string{`(?i)\bkill\b`}, "lorem ip", 1 << 18},
		{"bounded pattern, no word breaks", []string{`(?i)\bkill\b`}, "aaaaaaaa", 1 << 18},
		{"unbounded pattern", []string{`(?i)secret.*code`}, "lorem ip", 1 << 18},
		{"both, one-character events", []string{`(?i)\bkill\b`, `(?i)secret.*code`}, "a", 1 << 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DenyPatterns, cfg.CheckResponse = tc.patterns, true
			p, err := New(cfg, pluginsdk.Env{})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": tc.piece}}}})
			perByte := func(size int) float64 {
				st := &state{}
				n := 0
				for ; n < size; n += len(tc.piece) {
					p.collect(st, b, true)
					if hit, err := p.checkRealtime(context.Background(), st, false); hit || err != nil {
						t.Fatalf("flagged a clean stream: %v", err)
					}
				}
				if hit, err := p.checkRealtime(context.Background(), st, true); hit || err != nil {
					t.Fatalf("flagged a clean stream at its end: %v", err)
				}
				if len(st.texts) != 1 || cap(st.texts[0].buf) > 4*(p.cacheSize+2)*4+64 {
					t.Fatalf("after %d bytes the text keeps %d bytes", n, cap(st.texts[0].buf))
				}
				return float64(st.scanned) / float64(n)
			}
			// At most one window per event and pattern: the pattern's
			// reach, a character of context on each side, and the text
			// since the pattern's previous check.
			bound := 0.0
			for _, pat := range p.patterns {
				bound += float64(pat.reach+3+len(tc.piece)) / float64(len(tc.piece))
			}
			small := perByte(1 << 10)
			if small > bound {
				t.Fatalf("bytes scanned per byte of text: %.2f for 1 KiB, want at most %.2f", small, bound)
			}
			large := perByte(tc.large)
			if large > bound {
				t.Fatalf("bytes scanned per byte of text: %.2f for %d KiB, want at most %.2f", large, tc.large>>10, bound)
			}
			t.Logf("bytes scanned per byte of text: %.2f for 1 KiB, %.2f for %d KiB (bound %.2f)", small, large, tc.large>>10, bound)

			if raceEnabled {
				return
			}
			st := &state{}
			event := func() {
				p.collect(st, b, true)
				_, _ = p.checkRealtime(context.Background(), st, false)
			}
			for range 1000 {
				event() // the tail reaches its steady size
			}
			if n := testing.AllocsPerRun(1000, event); n != 0 {
				t.Fatalf("%.2f allocations per event", n)
			}
		})
	}
}
