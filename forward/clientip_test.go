package forward

import (
	"testing"
)

func TestClientIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234": "192.0.2.1",
		"[::1]:80":       "::1",
		"10.0.0.1":       "10.0.0.1",
		"":               "",
		"@":              "",
	} {
		if got := clientIP(in); got != want {
			t.Errorf("clientIP(%q) = %q, want %q", in, got, want)
		}
	}
}
