package yamlconf_test

import (
	"fmt"
	"time"

	"github.com/phasegate/phasegate/yamlconf"
)

func Example() {
	type Upstream struct {
		Nodes   map[string]int `yaml:"nodes" conf:"required"`
		Timeout time.Duration  `yaml:"timeout"`
	}
	type Config struct {
		Listen   string   `yaml:"listen" conf:"required"`
		Upstream Upstream `yaml:"upstream"`
	}

	data := []byte(`listen: ${LISTEN:-:8080}
upstream:
  nodes: {"10.0.0.1:80": 1}
  timout: 30s
  timeout: 30
`)
	var cfg Config
	_, probs := yamlconf.Load("gateway.yaml", data, nil, &cfg)
	if err := probs.Err(); err != nil {
		fmt.Println(err)
	}
	fmt.Println("listen:", cfg.Listen)
	// Output:
	// gateway.yaml:4:3: upstream.timout: unknown field "timout" (did you mean "timeout"?)
	// gateway.yaml:5:12: upstream.timeout: must be a duration like 30s, got 30
	// listen: :8080
}

// A constructor refuses a config that does not validate with one error, a
// line per problem.
func ExampleJoinFieldErrors() {
	err := yamlconf.JoinFieldErrors("my-plugin", []yamlconf.FieldError{
		{Field: "timeout", Msg: "must be positive, got -1s"},
		{Msg: "header and query are both empty"},
	})
	fmt.Println(err)
	fmt.Println(yamlconf.JoinFieldErrors("my-plugin", nil) == nil)
	// Output:
	// my-plugin: timeout: must be positive, got -1s
	// my-plugin: header and query are both empty
	// true
}
