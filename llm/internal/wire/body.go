package wire

import (
	"errors"
	"strconv"
	"strings"
)

// The problems Top reports, worded for a client.
var (
	ErrEmptyBody = errors.New("request body is empty")
	ErrNotJSON   = errors.New("request body is not valid JSON")
	ErrNotObject = errors.New("request body must be a JSON object")
)

// Top collects the members of the JSON object body into raw values, the
// last of duplicate keys winning: fields[i] gets the value of names[i], or
// stays nil. It returns ErrEmptyBody, ErrNotJSON or ErrNotObject when body
// is not one object.
func Top(body []byte, names []string, fields [][]byte) error {
	if skipWS(body, 0) == len(body) {
		return ErrEmptyBody
	}
	o, ok := ParseObject(body)
	if !ok {
		if Valid(body) {
			return ErrNotObject
		}
		return ErrNotJSON
	}
	if !Collect(&o, names, fields) {
		return ErrNotJSON
	}
	return nil
}

// Collect is Top for an object being walked; it reports whether the object
// was well formed.
func Collect(o *Object, names []string, fields [][]byte) bool {
	for {
		k, v, ok := o.Next()
		if !ok {
			return o.Err() == nil
		}
		for i, name := range names {
			if KeyIs(k, name) {
				fields[i] = v
				break
			}
		}
	}
}

// Path is the JSON path of a value in a body, built as a walk descends and
// rendered only when an error names it. It is a plain value, so building
// one allocates nothing; past maxPath levels the deepest are left out.
type Path struct {
	n    int
	segs [maxPath]pathSeg
}

// pathSeg is a member key, or an element index when key is empty.
type pathSeg struct {
	key   string
	index int
}

// maxPath is the depth of the paths the codecs name.
const maxPath = 8

// Root is the path of a whole body.
var Root = Path{}

// Key returns the path of member key of p.
func (p Path) Key(key string) Path {
	if p.n < maxPath {
		p.segs[p.n] = pathSeg{key: key}
		p.n++
	}
	return p
}

// Index returns the path of element i of p.
func (p Path) Index(i int) Path {
	if p.n < maxPath {
		p.segs[p.n] = pathSeg{index: i}
		p.n++
	}
	return p
}

// String renders the path as "messages[2].content".
func (p Path) String() string {
	var b []byte
	for _, s := range p.segs[:p.n] {
		if s.key == "" {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(s.index), 10)
			b = append(b, ']')
			continue
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, s.key...)
	}
	return string(b)
}

// PartPath renders the path of content part j of message i of a request,
// for errors about the neutral request an encoder was given.
func PartPath(i, j int) string {
	return Root.Key("messages").Index(i).Key("content").Index(j).String()
}

// IndexPath renders the path of element i of the top-level member key.
func IndexPath(key string, i int) string {
	return Root.Key(key).Index(i).String()
}

// maxQuoted is how much of an unreadable error body a message quotes.
const maxQuoted = 200

// Unreadable is the message of an upstream error whose body could not be
// read: its status and the start of the body, as valid UTF-8.
func Unreadable(status int, body []byte) string {
	b := []byte("upstream error (status ")
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ')')
	body = bytesTrim(body)
	if len(body) == 0 {
		return string(b)
	}
	b = append(b, ": "...)
	cut := len(body) > maxQuoted
	if cut {
		body = body[:maxQuoted]
	}
	b = []byte(strings.ToValidUTF8(string(append(b, body...)), "\uFFFD"))
	if cut {
		b = append(b, "..."...)
	}
	return string(b)
}

func bytesTrim(b []byte) []byte {
	i, j := skipWS(b, 0), len(b)
	for j > i && (b[j-1] == ' ' || b[j-1] == '\t' || b[j-1] == '\n' || b[j-1] == '\r') {
		j--
	}
	return b[i:j]
}
