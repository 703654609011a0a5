package gateway

import "github.com/phasegate/phasegate/plugins"

// The tests load configs that name the built-in plugins without passing a
// registry, as cmd/phasegate's would.
func init() { defaultPlugins = plugins.Builtins }
