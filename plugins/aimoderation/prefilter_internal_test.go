package aimoderation

import (
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestPrefilterLiteral(t *testing.T) {
	for _, tc := range []struct {
		pattern         string
		lit             string
		fold, asciiOnly bool
	}{
		{`(?i)\bkill\b`, "kill", true, true}, // k folds to the Kelvin sign
		{`(?i)\bbomb\b`, "bomb", true, false},
		{`(?i)BOMB`, "bomb", true, false},
		{`secret`, "secret", false, false},
		{`(?i)how to (make|build) a bomb`, "how to ", true, false}, // the first of the longest
		{`(?i)ignore (all )?previous instructions`, "previous instructions", true, true},
		{`naïve`, "naïve", false, false},
		{`(?i)naïve`, "", false, false}, // a non-ASCII letter folded: no scan
		{`kill|bomb`, "", false, false},
		{`(kill)?`, "", false, false},
		{`x*`, "", false, false},
		{`(?:ab){2,3}c`, "ab", false, false},
		{`\x{FFFD}`, "", false, false},
	} {
		f := newPrefilter(tc.pattern)
		if string(f.lit) != tc.lit || (tc.lit != "" && (f.fold != tc.fold || f.asciiOnly != tc.asciiOnly)) {
			t.Errorf("%s: literal %q fold %v asciiOnly %v; want %q %v %v", tc.pattern, f.lit, f.fold, f.asciiOnly, tc.lit, tc.fold, tc.asciiOnly)
		}
	}
}

// The prefilter never turns a match away: whenever a pattern matches a
// text, the text passes its prefilter. Texts mix the patterns' literals
// in any case, Unicode folds of ASCII letters (the Kelvin sign, the long
// s) and invalid bytes.
func TestPropertyPrefilterKeepsMatches(t *testing.T) {
	patterns := []string{`(?i)\bkill\b`, `(?i)\bbomb\b`, `secret`, `(?i)ignore (all )?previous instructions`, `(?i)ss`, `(?:ab){2,3}c`}
	pieces := []string{"kill", "KiLL", "\u212Aill", "bomb", "BoMb", "secret", "Secret", "ignore previous instructions",
		"IGNORE ALL PREVIOUS INSTRUCTIONS", "\u017Fs", "ſ", "ab", "c", " ", "x", "\xff", "é", "\u212A"}
	rapid.Check(t, func(t *rapid.T) {
		var b strings.Builder
		for _, p := range rapid.SliceOfN(rapid.SampledFrom(pieces), 0, 12).Draw(t, "pieces") {
			b.WriteString(p)
		}
		text := []byte(b.String())
		for _, s := range patterns {
			f := newPrefilter(s)
			if regexp.MustCompile(s).Match(text) && !mayMatch(&f, text) {
				t.Fatalf("%s matches %q, which its prefilter (%q) turned away", s, text, f.lit)
			}
			if mayMatch(&f, string(text)) != mayMatch(&f, text) {
				t.Fatalf("%s: the prefilter says otherwise of %q as a string", s, text)
			}
		}
	})
}

func TestPrefilterScan(t *testing.T) {
	f := newPrefilter(`(?i)\bbomb\b`)
	for text, want := range map[string]bool{"": false, "bom": false, "a BOMB!": true, "xbOmBx": true, "b o m b": false, "bombé": true} {
		if got := mayMatch(&f, text); got != want {
			t.Errorf("mayMatch(%q) = %v, want %v", text, got, want)
		}
	}
	k := newPrefilter(`(?i)kill`)
	if mayMatch(&k, "no match here") || !mayMatch(&k, []byte("\u212Aill")) {
		t.Error("a Kelvin sign must let the text through, an ASCII text without the literal not")
	}
}
