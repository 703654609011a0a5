package pluginsdk

import (
	"fmt"
	"sort"
	"sync"
)

// Registry maps plugin names, as routes use them in their plugins: mapping,
// to plugin specs. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]Spec{}} }

// Register adds s. Like Caddy's module registration, it panics on a
// programming error: an empty name, a nil New, or a name already taken.
func (r *Registry) Register(s Spec) {
	if s.Name == "" || s.New == nil {
		panic(fmt.Sprintf("pluginsdk: invalid plugin spec %q: a name and New are required", s.Name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Name]; dup {
		panic(fmt.Sprintf("pluginsdk: plugin %q registered twice", s.Name))
	}
	r.specs[s.Name] = s
}

// Lookup returns the spec registered under name.
func (r *Registry) Lookup(name string) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[name]
	return s, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.specs))
	for n := range r.specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
