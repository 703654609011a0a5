package pluginsdk

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// Shared holds resources that plugins of several routes, and of successive
// configs, use together: one connection pool to a moderation endpoint, one
// Redis client. Each is opened by its first user and closed when its last
// user releases it, so a reload, which builds the new plugins before it
// closes the old ones, keeps it open. The gateway keeps one Shared for its
// whole life and hands it to plugins in Env.Shared. Safe for concurrent use.
type Shared struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

type sharedEntry struct {
	v    io.Closer
	refs int
}

// NewShared returns an empty set.
func NewShared() *Shared { return &Shared{m: map[string]*sharedEntry{}} }

// AcquireShared returns the resource under key in s, opening it with open
// when nobody holds it, and the release that gives this hold back: the
// last release closes the resource. release is idempotent; call it from the
// plugin's Close. With a nil s the resource is the caller's alone. A
// resource under key that is not a T is an error (two plugins chose the
// same key).
func AcquireShared[T io.Closer](s *Shared, key string, open func() (T, error)) (v T, release func() error, err error) {
	if s == nil {
		v, err = open()
		if err != nil {
			return v, nil, err
		}
		var once sync.Once
		return v, func() (err error) { once.Do(func() { err = v.Close() }); return err }, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[key]
	if !ok {
		v, err = open()
		if err != nil {
			return v, nil, err
		}
		e = &sharedEntry{v: v}
		s.m[key] = e
	}
	v, ok = e.v.(T)
	if !ok {
		var want T
		return want, nil, fmt.Errorf("pluginsdk: shared %q is a %T, not a %T", key, e.v, want)
	}
	e.refs++
	var once sync.Once
	return v, func() (err error) {
		once.Do(func() { err = s.release(key, e) })
		return err
	}, nil
}

func (s *Shared) release(key string, e *sharedEntry) error {
	s.mu.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(s.m, key)
	}
	s.mu.Unlock()
	if last {
		return e.v.Close()
	}
	return nil
}

// Len is the number of resources open in s.
func (s *Shared) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// ClosePlugins closes every plugin of ps that implements io.Closer, and
// returns their errors joined. The gateway calls it once the plugins are
// out of service: swapped out by a reload and idle, or at shutdown.
func ClosePlugins[P any](ps []P) error {
	var errs []error
	for _, p := range ps {
		if c, ok := any(p).(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
