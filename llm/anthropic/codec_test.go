package anthropic

import (
	"strings"
	"testing"
)

func TestToolID(t *testing.T) {
	for in, want := range map[string]string{
		"toolu_01A09q90qw90lq917835lq9": "toolu_01A09q90qw90lq917835lq9",
		"call_F1qUZ3n9":                 "call_F1qUZ3n9",
		"functions.get_weather:0":       "functions_get_weather_0",
		"é":                             "__",
		"":                              "toolu_",
	} {
		if got := ToolID(in); got != want {
			t.Errorf("ToolID(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestErrorTypesRoundTrip: a status written as an error type reads back
// as the same status, for the statuses Messages has a type of its own for.
func TestErrorTypesRoundTrip(t *testing.T) {
	for status, typ := range errorTypes {
		if status == 503 {
			continue // overloaded_error reads back as 529
		}
		if got := statusOf(typ); got != status {
			t.Errorf("%d -> %s -> %d", status, typ, got)
		}
	}
	if ErrorType(418) != "invalid_request_error" || ErrorType(502) != "api_error" || ErrorType(503) != "overloaded_error" {
		t.Error("statuses without a type of their own")
	}
}

func TestDecodeErrorOfAnUnreadableBody(t *testing.T) {
	e := Codec{}.DecodeError(502, []byte("<html>"+strings.Repeat("x", 300)+"\xff</html>"))
	if e.Status != 502 || !strings.HasPrefix(e.Message, "upstream error (status 502): <html>xx") || !strings.HasSuffix(e.Message, "...") || len(e.Message) > 260 {
		t.Errorf("%+v", e)
	}
}
