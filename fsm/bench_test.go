package fsm

import "testing"

// One request's machine: pooled instance, the six events of a completed
// request, one binding released on the way to done.
func BenchmarkRequestMachine(b *testing.B) {
	b.ReportAllocs()
	release := func() {}
	for b.Loop() {
		m := New(nil)
		_ = m.Fire(EventStart)
		m.Scope().Acquire(Resource{Name: "active"}, release)
		_ = m.Fire(EventNext)
		_ = m.Fire(EventNext)
		_ = m.Fire(EventNext)
		_ = m.Fire(EventNext)
		_ = m.Fire(EventFinish)
		m.Release()
	}
}
