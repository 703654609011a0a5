package gateway

import (
	"fmt"
	"sort"
	"sync"

	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/plugins/aipromptguard"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/plugins/requestid"
)

// Registry maps plugin names, as routes use them in their plugins: mapping,
// to plugin specs. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]phases.Spec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{specs: map[string]phases.Spec{}} }

// builtins are the plugins every gateway knows.
var builtins = []phases.Spec{
	requestid.Spec,
	keyauth.Spec,
	airatelimiting.Spec,
	aipromptguard.Spec,
	aimoderation.Spec,
	aiproxy.Spec,
	aiproxymulti.Spec,
}

// Builtins returns a new registry holding phasegate's built-in plugins; add
// your own with Register.
func Builtins() *Registry {
	r := NewRegistry()
	for _, s := range builtins {
		r.Register(s)
	}
	return r
}

// Register adds s. Like Caddy's module registration, it panics on a
// programming error: an empty name, a nil New, or a name already taken.
func (r *Registry) Register(s phases.Spec) {
	if s.Name == "" || s.New == nil {
		panic(fmt.Sprintf("gateway: invalid plugin spec %q: a name and New are required", s.Name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.Name]; dup {
		panic(fmt.Sprintf("gateway: plugin %q registered twice", s.Name))
	}
	r.specs[s.Name] = s
}

// Lookup returns the spec registered under name.
func (r *Registry) Lookup(name string) (phases.Spec, bool) {
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
