//go:build race

package aimoderation

// raceEnabled reports a -race build, where sync.Pool (used by regexp) drops
// items at random and allocation counts mean nothing.
const raceEnabled = true
