package phases

// ChainPlugins exposes a chain's plugins, in execution order, to the
// package's external tests.
func ChainPlugins(c *Chain) []Plugin { return append([]Plugin(nil), c.plugins...) }

// EnsureDefaults exposes Hooks.ensureDefaults to the external tests.
func (h *Hooks) EnsureDefaults() { h.ensureDefaults() }

// ExitCause exposes an exit's cause to the external tests.
func ExitCause(e Exit) Cause { return e.cause() }

// FinalFrame is the default Renderer's end of a stream, for the external
// tests.
func FinalFrame(body []byte) []byte { return defaultRenderer.EndStream(body) }
