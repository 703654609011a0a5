// Package repocheck holds tests about the repository itself: every package
// has a doc comment, every public library package shows its API in an
// example_test.go, phases' exported surface stays small, and packages
// import only their own layer and those below it (layers_test.go), with no
// public package importing internal/.
package repocheck
