// Package plugins lists phasegate's built-in plugins. Each lives in a
// package of its own below this one, built only on public packages
// (phases, pluginsdk, llm, forward), exactly as a plugin written outside
// this module would be.
package plugins

import (
	"github.com/phasegate/phasegate/plugins/aimoderation"
	"github.com/phasegate/phasegate/plugins/aipromptguard"
	"github.com/phasegate/phasegate/plugins/aiproxy"
	"github.com/phasegate/phasegate/plugins/aiproxymulti"
	"github.com/phasegate/phasegate/plugins/airatelimiting"
	"github.com/phasegate/phasegate/plugins/keyauth"
	"github.com/phasegate/phasegate/plugins/requestid"
	"github.com/phasegate/phasegate/pluginsdk"
)

// Specs are the built-in plugins' specs.
func Specs() []pluginsdk.Spec {
	return []pluginsdk.Spec{
		requestid.Spec,
		keyauth.Spec,
		airatelimiting.Spec,
		aipromptguard.Spec,
		aimoderation.Spec,
		aiproxy.Spec,
		aiproxymulti.Spec,
	}
}

// Builtins returns a new registry holding phasegate's built-in plugins; add
// your own with Register.
func Builtins() *pluginsdk.Registry {
	r := pluginsdk.NewRegistry()
	for _, s := range Specs() {
		r.Register(s)
	}
	return r
}
