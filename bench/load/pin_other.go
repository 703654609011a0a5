//go:build !linux

package main

import "errors"

// pinSupported: pinning uses Linux's sched_setaffinity and taskset.
const pinSupported = false

func pinSelf(int) error { return errors.New("pinning needs Linux") }
