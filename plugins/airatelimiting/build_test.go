package airatelimiting_test

import "os"

// buildDir is a directory for the phasegate binary the cluster tests run,
// removed by TestMain.
func buildDir() (string, error) {
	dir, err := os.MkdirTemp("", "phasegate-rl-")
	if err == nil {
		buildDirs = append(buildDirs, dir)
	}
	return dir, err
}

var buildDirs []string
