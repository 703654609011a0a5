// Package harness holds what phasegate's load benchmark (bench/load) and
// soak test (bench/soak) share: building the phasegate binary and checking
// its config, running it (or any server) as a child process whose stdout
// and stderr go to files, generating configs, scraping and reading the
// Prometheus exposition of an admin listener (with expfmt), reading
// server-sent event streams (with package sse), and a few client helpers.
//
// Every child process started here dies with the harness: it runs in its
// own process group, on Linux with a parent-death signal, and [Group]
// stops a set of them on every exit path.
package harness
