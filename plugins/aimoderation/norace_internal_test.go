//go:build !race

package aimoderation

const raceEnabled = false
