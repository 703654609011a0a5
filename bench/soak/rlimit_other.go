//go:build !unix

package soak

func raiseNoFile(uint64) string { return "" }
