package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/gateway"
	"github.com/phasegate/phasegate/phases"
	"github.com/phasegate/phasegate/plugins"
	"github.com/phasegate/phasegate/pluginsdk"
)

// greeting is a user's own plugin: an access hook that refuses requests
// without a name, configured from YAML.
type greetingConfig struct {
	Header string `yaml:"header"`
}

type greeting struct{ header string }

func (g *greeting) Name() string { return "greeting" }

func (g *greeting) Access(ctx context.Context, r *phases.Request) phases.Exit {
	if r.Header.Get(g.header) == "" {
		return phases.Error(http.StatusBadRequest, "invalid_request_error", "say who you are in "+g.header)
	}
	return phases.Exit{}
}

// Embedding the gateway in your own server, with a plugin of your own.
func Example() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s\n", r.Header.Get("X-Name"))
	}))
	defer origin.Close()

	reg := plugins.Builtins()
	reg.Register(pluginsdk.Spec{
		Name:   "greeting",
		Config: func() any { return &greetingConfig{Header: "X-Name"} },
		New: func(cfg any, env pluginsdk.Env) (phases.Plugin, error) {
			return &greeting{header: cfg.(*greetingConfig).Header}, nil
		},
	})
	cfg, err := gateway.LoadConfig("embedded.yaml", []byte(`
routes:
  - id: hello
    uri: /hello
    plugins:
      greeting: {}
    upstream: { nodes: { "`+origin.Listener.Addr().String()+`": 1 } }
`), reg, nil)
	if err != nil {
		panic(err)
	}
	quiet := zerolog.Nop()
	g, err := gateway.New(cfg, gateway.Options{
		Registerer: prometheus.NewRegistry(),
		Logger:     &quiet,
		Plugins:    reg,
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", g) // the gateway is an http.Handler
	srv := httptest.NewServer(mux)
	defer srv.Close()

	for _, name := range []string{"", "Ada"} {
		req, _ := http.NewRequest("GET", srv.URL+"/hello", nil)
		if name != "" {
			req.Header.Set("X-Name", name)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
		if resp.StatusCode != 200 {
			fmt.Println()
		}
	}
	// Output:
	// 400 {"error":{"message":"say who you are in X-Name","type":"invalid_request_error","code":400}}
	// 200 hello, Ada
}

// A config with problems reports all of them, each with file, line and
// column.
func ExampleLoadConfig() {
	_, err := gateway.LoadConfig("gw.yaml", []byte(`
listen: 127.0.0.1
routes:
  - id: api
    uri: api/*
    upstream: { nodes: { "127.0.0.1:8081": 1 }, timeout: 5 }
`), nil, nil)
	fmt.Println(err)
	// Output:
	// gw.yaml:2:9: listen: must be host:port, like 127.0.0.1:9080
	// gw.yaml:5:10: routes[0].uri: must start with "/"
	// gw.yaml:6:58: routes[0].upstream.timeout: must be a duration like 30s, got 5
}

// The client: block's fields left out keep their defaults.
func ExampleClientConfig() {
	cfg, err := gateway.LoadConfig("gw.yaml", []byte(`
client: { send_timeout: 5m, max_body_bytes: 1048576 }
routes:
  - { id: api, uri: /api/*, upstream: { nodes: { "127.0.0.1:8081": 1 } } }
`), nil, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%+v\n", cfg.Client)
	// Output: {HeaderTimeout:10s BodyTimeout:1m0s SendTimeout:5m0s IdleTimeout:2m0s MaxBodyBytes:1048576}
}
