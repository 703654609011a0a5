// Package repocheck holds tests about the repository itself: every package
// has a doc comment, and every public library package shows its API in an
// example_test.go.
package repocheck
