// Package yamlconf is phasegate's strict, position-aware YAML config
// decoder.
//
// It implements the config error contract: every problem is one line
//
//	FILE:LINE:COL: path.to.field: what is wrong
//
// and all problems of a file are reported at once, sorted by position.
// Unknown fields are errors (with a "did you mean" hint for typos),
// ${ENV} references are expanded, and durations are written like "30s".
//
// It works on gopkg.in/yaml.v3's node tree and decodes into Go values
// with reflect, driven by `yaml:"name"` struct tags (plus `yaml:"-"`,
// `yaml:",inline"` and `conf:"required"`), instead of yaml.v3's own
// decoder, which stops at the first error and loses field paths.
//
// Typical use:
//
//	doc, probs := yamlconf.Parse(file, data, nil)
//	if doc != nil {
//		probs = append(probs, doc.Decode(&cfg)...)
//	}
//	// Plugin configs kept as *yaml.Node are decoded later, in place:
//	probs = append(probs, doc.DecodeNode(node, "routes[0].plugins.ai-proxy", &pluginCfg)...)
//	probs.Sort()
//	if err := probs.Err(); err != nil {
//		return err
//	}
//
// Config structs check themselves by implementing [Validator]; their
// [FieldError]s become positioned problems. Types with their own syntax
// implement [Unmarshaler] (or encoding.TextUnmarshaler).
//
// Paths are written as in "routes[1].plugins.ai-proxy.endpoint"; keys
// that contain dots, brackets, quotes or spaces are quoted in brackets:
// `upstream.nodes["10.0.0.1:80"]`. See [PathKey] and [PathIndex].
//
// Decoding never panics on any input (for a well-formed target type),
// and alias expansion is capped by [MaxAliasExpansion].
package yamlconf
