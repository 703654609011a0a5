package plugins_test

import (
	"fmt"

	"github.com/phasegate/phasegate/plugins"
)

func ExampleBuiltins() {
	fmt.Println(plugins.Builtins().Names())
	// Output: [ai-content-moderation ai-prompt-guard ai-proxy ai-proxy-multi ai-rate-limiting key-auth request-id]
}
