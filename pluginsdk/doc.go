// Package pluginsdk is what a plugin author needs beyond the lifecycle of
// package phases: declaring a plugin to the gateway (Spec, Typed) with a
// typed config whose errors are reported at their file, line and column
// (FieldError, ConfigError), the per-route environment a plugin is built
// with (Env), the Registry of plugin names, the well-known request values
// plugins publish for each other (RequestID, Consumer), the access-log
// fields a plugin adds (LogFielder), and cleanup: a plugin that implements
// io.Closer is closed once a reload has swapped it out and the last request
// that started on it has ended, and resources shared across routes and
// reloads are reference-counted (Shared, AcquireShared).
//
// docs/writing-plugins.md walks through a complete plugin built on it.
package pluginsdk
