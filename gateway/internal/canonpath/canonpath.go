// Package canonpath computes the one canonical form of a request path that
// the router and the upstream both see (docs/configuration.md, "Paths"):
// percent-encodings decoded, dot-segments resolved (RFC 3986 §5.2.4, also
// when written as %2e), repeated slashes merged, and a path that climbs
// above "/" refused.
//
// A slash or backslash that is not a separator (%2F, %5C in any case, or a
// literal backslash) is never decoded into a separator: it is reported in
// Path.EncodedSlash, kept as it is in Path.Route and Path.RawPath, and the
// caller decides whether to refuse it (Envoy's
// path_with_escaped_slashes_action: REJECT_REQUEST or KEEP_UNCHANGED).
package canonpath

import (
	"errors"
	"net/url"
	"strings"
)

// Path is a request path in canonical form.
type Path struct {
	// Path is the decoded path, what url.URL.Path holds. An encoded slash
	// or backslash is decoded here (as url.URL does), so Path alone cannot
	// tell it from a separator: use Route or RawPath.
	Path string
	// RawPath is the escaped form when Path's default encoding would lose
	// an encoded slash or backslash, else "": what url.URL.RawPath holds,
	// and a valid encoding of Path by url.URL's rules.
	RawPath string
	// Route is what routes are matched against: Path, except that encoded
	// slashes and backslashes stay encoded as in RawPath, so they never act
	// as separators.
	Route string
	// EncodedSlash reports a slash or backslash that is not a separator,
	// %2F or %5C (any case) or a literal backslash, anywhere in the path as
	// written, even in a segment a dot-segment removed.
	EncodedSlash bool
}

// Errors of Clean: each is answered with 400.
var (
	ErrNotAbsolute = errors.New("the request target is not an absolute path")
	ErrAboveRoot   = errors.New("the path climbs above /")
	ErrBadEscape   = errors.New("the path holds an invalid percent-encoding")
	ErrNUL         = errors.New("the path holds a NUL byte")
)

// FromURL cleans the path of u as the client wrote it: u.RawPath when the
// server kept it, else u's default encoding, which is then what the client
// sent. A URL with an opaque part ("http:x") has no absolute path.
func FromURL(u *url.URL) (Path, error) {
	if u.Opaque != "" {
		return Path{}, ErrNotAbsolute
	}
	raw := u.RawPath
	if raw == "" {
		raw = u.EscapedPath()
	}
	return Clean(raw)
}

// Clean returns the canonical form of escaped, a path as written in a
// request target (percent-encoded, without query). The empty path is "/".
// Like nginx, repeated slashes are merged before dot-segments are resolved,
// so "/a//../b" is "/b". A final dot-segment leaves a trailing slash
// ("/a/b/.." is "/a/"), as RFC 3986 §5.2.4 does.
func Clean(escaped string) (Path, error) {
	if escaped == "" {
		return Path{Path: "/", Route: "/"}, nil
	}
	if escaped[0] != '/' {
		return Path{}, ErrNotAbsolute
	}
	if plain(escaped) {
		return Path{Path: escaped, Route: escaped}, nil
	}
	parts := strings.Split(escaped[1:], "/")
	segs := make([]segment, 0, len(parts))
	trailing, slash := false, false
	for i, part := range parts {
		last := i == len(parts)-1
		if part == "" { // merged; a final one keeps the trailing slash
			trailing = last
			continue
		}
		s, err := decode(part)
		if err != nil {
			return Path{}, err
		}
		slash = slash || s.slash
		switch s.dec {
		case ".":
			trailing = last
			continue
		case "..":
			if len(segs) == 0 {
				return Path{}, ErrAboveRoot
			}
			segs = segs[:len(segs)-1]
			trailing = last
			continue
		}
		segs = append(segs, s)
		trailing = false
	}
	p := Path{
		Path:         join(segs, trailing, func(s segment) string { return s.dec }),
		Route:        join(segs, trailing, func(s segment) string { return s.route }),
		EncodedSlash: slash,
	}
	for _, s := range segs {
		if s.slash {
			p.RawPath = join(segs, trailing, func(s segment) string { return s.esc })
			break
		}
	}
	return p, nil
}

// plain reports whether p is canonical as it is: nothing to decode, no
// backslash, no empty segment and no segment starting with a dot.
func plain(p string) bool {
	return !strings.ContainsAny(p, "%\\\x00") && !strings.Contains(p, "//") && !strings.Contains(p, "/.")
}

// segment is one path segment in its three forms.
type segment struct {
	dec   string // decoded
	route string // decoded except slashes and backslashes that are not separators
	esc   string // escaped by url.URL's rules, those slashes kept as written
	slash bool
}

// decode decodes one segment (no '/' in it).
func decode(part string) (segment, error) {
	var dec, route, esc strings.Builder
	s := segment{}
	piece := 0 // start in dec of the text not yet escaped into esc
	flush := func() {
		esc.WriteString((&url.URL{Path: dec.String()[piece:]}).EscapedPath())
		piece = dec.Len()
	}
	for i := 0; i < len(part); i++ {
		c := part[i]
		switch {
		case c == '%':
			if i+2 >= len(part) || !ishex(part[i+1]) || !ishex(part[i+2]) {
				return segment{}, ErrBadEscape
			}
			v := unhex(part[i+1])<<4 | unhex(part[i+2])
			switch v {
			case 0:
				return segment{}, ErrNUL
			case '/', '\\':
				s.slash = true
				flush()
				dec.WriteByte(v)
				route.WriteString(part[i : i+3])
				esc.WriteString(part[i : i+3])
				piece = dec.Len()
			default:
				dec.WriteByte(v)
				route.WriteByte(v)
			}
			i += 2
		case c == 0:
			return segment{}, ErrNUL
		case c == '\\':
			s.slash = true
			flush()
			dec.WriteByte(c)
			route.WriteString("%5C") // url.URL never keeps a literal backslash:
			esc.WriteString("%5C")   // this is what the upstream gets
			piece = dec.Len()
		default:
			dec.WriteByte(c)
			route.WriteByte(c)
		}
	}
	flush()
	s.dec, s.route, s.esc = dec.String(), route.String(), esc.String()
	return s, nil
}

func join(segs []segment, trailing bool, form func(segment) string) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(form(s))
	}
	if len(segs) == 0 || trailing {
		b.WriteByte('/')
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
