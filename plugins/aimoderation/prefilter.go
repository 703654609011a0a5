package aimoderation

import (
	"regexp/syntax"
	"unicode"
	"unicode/utf8"
)

// prefilter is a literal that every match of a pattern contains: a text
// without it cannot match, which a byte scan tells far faster than the
// regexp. The zero value lets everything through.
type prefilter struct {
	lit []byte // the literal, lower-cased when fold
	// fold: the literal matches case-insensitively (its letters are
	// ASCII); asciiOnly: one of them also folds to a non-ASCII letter (k to
	// the Kelvin sign, s to the long s), so only an ASCII text may be
	// scanned for it byte by byte.
	fold, asciiOnly bool
}

// newPrefilter finds the longest literal every match of the RE2 pattern s
// contains, if any that the scan handles: an exact one, or a
// case-insensitive one of ASCII letters.
func newPrefilter(s string) prefilter {
	re, err := syntax.Parse(s, syntax.Perl)
	if err != nil {
		return prefilter{}
	}
	lit := requiredLiteral(re.Simplify())
	if lit == nil {
		return prefilter{}
	}
	var f prefilter
	f.fold = lit.Flags&syntax.FoldCase != 0
	for _, r := range lit.Rune {
		switch {
		case r == utf8.RuneError:
			// Matches any invalid byte too, which no byte scan sees.
			return prefilter{}
		case f.fold && r >= utf8.RuneSelf:
			return prefilter{}
		case f.fold:
			r = unicode.ToLower(r)
			for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
				if o >= utf8.RuneSelf {
					f.asciiOnly = true
				}
			}
		}
		f.lit = utf8.AppendRune(f.lit, r)
	}
	return f
}

// requiredLiteral returns the longest literal node that every match of re
// passes through, or nil.
func requiredLiteral(re *syntax.Regexp) *syntax.Regexp {
	switch re.Op {
	case syntax.OpLiteral:
		return re
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiteral(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiteral(re.Sub[0])
		}
	case syntax.OpConcat:
		var best *syntax.Regexp
		for _, sub := range re.Sub {
			if l := requiredLiteral(sub); l != nil && (best == nil || len(l.Rune) > len(best.Rune)) {
				best = l
			}
		}
		return best
	}
	return nil
}

// mayMatch reports whether text may hold a match of f's pattern: false
// only when it lacks the literal.
func mayMatch[T string | []byte](f *prefilter, text T) bool {
	switch {
	case len(f.lit) == 0:
		return true
	case f.fold && f.asciiOnly && !isASCII(text):
		return true
	}
	return contains(text, f.lit, f.fold)
}

func isASCII[T string | []byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// contains reports whether text contains lit, exactly or, with fold, with
// ASCII letters in either case (lit is then lower-case).
func contains[T string | []byte](text T, lit []byte, fold bool) bool {
	n := len(lit)
	for i := 0; i+n <= len(text); i++ {
		j := 0
		for j < n && (text[i+j] == lit[j] || fold && lower(text[i+j]) == lit[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
