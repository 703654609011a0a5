package canonpath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

var cases = []struct {
	in    string
	path  string
	raw   string
	route string
	slash bool
	err   error
}{
	{in: "/", path: "/"},
	{in: "", path: "/"},
	{in: "/api/v1/x", path: "/api/v1/x"},
	{in: "/api/", path: "/api/"},
	{in: "/public/../admin/secret.txt", path: "/admin/secret.txt"},
	{in: "/public/%2e%2e/admin/secret.txt", path: "/admin/secret.txt"},
	{in: "/public/%2E%2E/admin/secret.txt", path: "/admin/secret.txt"},
	{in: "/public/.%2e/admin", path: "/admin"},
	{in: "/public/%2e./admin", path: "/admin"},
	{in: "/public/%2e/admin", path: "/public/admin"},
	{in: "/a/./b/../c", path: "/a/c"},
	{in: "//admin", path: "/admin"},
	{in: "///admin//secret.txt", path: "/admin/secret.txt"},
	{in: "/a//../b", path: "/b"}, // merged first, as nginx does
	{in: "/a/b/..", path: "/a/"},
	{in: "/a/b/.", path: "/a/b/"},
	{in: "/a/..", path: "/"},
	{in: "/..", err: ErrAboveRoot},
	{in: "/a/../..", err: ErrAboveRoot},
	{in: "/%2e%2e/x", err: ErrAboveRoot},
	{in: "/a/../../b", err: ErrAboveRoot},
	{in: "/.well-known/x", path: "/.well-known/x"},
	{in: "/a/...", path: "/a/..."},
	{in: "/a/..b", path: "/a/..b"},
	{in: "/%61pi/x", path: "/api/x"},
	{in: "/a%20b", path: "/a b"},
	{in: "/a%25b", path: "/a%b"},
	{in: "/a%252e%252e/x", path: "/a%2e%2e/x"},
	{in: "/a%3Fb", path: "/a?b"},
	{in: "/a%2Fb", path: "/a/b", raw: "/a%2Fb", route: "/a%2Fb", slash: true},
	{in: "/a%2fb", path: "/a/b", raw: "/a%2fb", route: "/a%2fb", slash: true},
	{in: "/a%5Cb", path: `/a\b`, raw: "/a%5Cb", route: "/a%5Cb", slash: true},
	{in: "/a%5cb", path: `/a\b`, raw: "/a%5cb", route: "/a%5cb", slash: true},
	{in: `/a\b`, path: `/a\b`, raw: "/a%5Cb", route: "/a%5Cb", slash: true},
	{in: "/public/..%2Fadmin", path: "/public/../admin", raw: "/public/..%2Fadmin", route: "/public/..%2Fadmin", slash: true},
	{in: "/x/%2e%2e%2F/y", path: "/x/..//y", raw: "/x/..%2F/y", route: "/x/..%2F/y", slash: true},
	{in: "/a%20%2F b/../c", path: "/c", slash: true},
	{in: "/a%20%2Fb/c", path: "/a /b/c", raw: "/a%20%2Fb/c", route: "/a %2Fb/c", slash: true},
	{in: "*", err: ErrNotAbsolute},
	{in: "a/b", err: ErrNotAbsolute},
	{in: "/a%zz", err: ErrBadEscape},
	{in: "/a%2", err: ErrBadEscape},
	{in: "/a%", err: ErrBadEscape},
	{in: "/a%00b", err: ErrNUL},
	{in: "/a\x00b", err: ErrNUL},
}

func TestClean(t *testing.T) {
	for _, c := range cases {
		got, err := Clean(c.in)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("Clean(%q) = %+v, %v; want error %v", c.in, got, err, c.err)
			}
			continue
		}
		route := c.route
		if route == "" {
			route = c.path
		}
		want := Path{Path: c.path, RawPath: c.raw, Route: route, EncodedSlash: c.slash}
		if err != nil || got != want {
			t.Errorf("Clean(%q) = %+v, %v; want %+v", c.in, got, err, want)
		}
	}
}

func TestFromURL(t *testing.T) {
	for _, c := range []struct {
		target string
		path   string
		err    error
	}{
		{target: "/public/../admin/secret.txt?q=%2F..", path: "/admin/secret.txt"},
		{target: "http://example.com/public/%2e%2e/admin", path: "/admin"},
		{target: "http://example.com", path: "/"},
		{target: "*", err: ErrNotAbsolute},
		{target: "/a%25", path: "/a%"},
		{target: "/a%2Fb/{x}", path: "/a/b/{x}"},
	} {
		u, err := url.ParseRequestURI(c.target)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromURL(u)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("FromURL(%q) = %+v, %v; want error %v", c.target, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Path != c.path {
			t.Errorf("FromURL(%q) = %+v, %v; want path %q", c.target, got, err, c.path)
		}
	}
	// An opaque URL has no absolute path.
	if _, err := FromURL(&url.URL{Scheme: "http", Opaque: "x"}); !errors.Is(err, ErrNotAbsolute) {
		t.Errorf("opaque URL: %v, want ErrNotAbsolute", err)
	}
}

// TestEncodedSlashSurvivesURL checks that the RawPath Clean returns is one
// url.URL keeps: else the upstream would get the slash decoded into a
// separator.
func TestEncodedSlashSurvivesURL(t *testing.T) {
	for _, in := range []string{"/a%2Fb", `/a\b{c}`, "/x%2f%7B/y z%5C"} {
		p, err := Clean(in)
		if err != nil {
			t.Fatal(err)
		}
		u := &url.URL{Path: p.Path, RawPath: p.RawPath}
		if got := u.EscapedPath(); got != p.RawPath {
			t.Errorf("Clean(%q): url.URL escapes it as %q, want RawPath %q kept", in, got, p.RawPath)
		}
	}
}

// FuzzClean checks the normaliser's invariants on any input: Clean is
// idempotent through the form it hands the upstream, the result never
// climbs above the root and holds no dot-segment or empty segment, and
// url.URL keeps its RawPath.
func FuzzClean(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	for _, s := range []string{"/a/%2e%2e%2f%2e%2e/b", "/%5c..%5c", "/a?b", "/%25%32%65", "/./../", "/a/./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := Clean(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p.Path, "/") || !strings.HasPrefix(p.Route, "/") {
			t.Fatalf("Clean(%q) = %+v: not absolute", in, p)
		}
		upstream := p.RawPath
		if upstream == "" {
			upstream = (&url.URL{Path: p.Path}).EscapedPath()
		} else if got := (&url.URL{Path: p.Path, RawPath: p.RawPath}).EscapedPath(); got != p.RawPath {
			t.Fatalf("Clean(%q) = %+v: url.URL drops RawPath for %q", in, p, got)
		}
		again, err := Clean(upstream)
		if again.EncodedSlash && !p.EncodedSlash {
			t.Fatalf("Clean(%q) = %+v: Clean(%q) finds an encoded slash", in, p, upstream)
		}
		again.EncodedSlash = p.EncodedSlash // a removed segment may have held one
		if err != nil || again != p {
			t.Fatalf("not idempotent: Clean(%q) = %+v; Clean(%q) = %+v, %v", in, p, upstream, again, err)
		}
		for i, seg := range strings.Split(p.Route[1:], "/") {
			last := i == strings.Count(p.Route[1:], "/")
			if seg == "." || seg == ".." || (seg == "" && !last) {
				t.Fatalf("Clean(%q) = %+v: segment %q remains", in, p, seg)
			}
		}
		if p.RawPath != "" && !p.EncodedSlash {
			t.Fatalf("Clean(%q) = %+v: RawPath without EncodedSlash", in, p)
		}
	})
}
