package mockllm_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/phasegate/phasegate/mockllm"
)

// Serve the mock on a free loopback port and ask it for a chat completion.
func ExampleStart() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	resp, err := http.Post(srv.URL()+mockllm.PathChatCompletions, "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()

	var out struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.ID, out.Model)
	fmt.Println(out.Choices[0].Message.Content)
	fmt.Printf("usage: %d + %d = %d\n", out.Usage.PromptTokens, out.Usage.CompletionTokens, out.Usage.TotalTokens)
	// Output:
	// chatcmpl-mock-1 gpt-4o-mini
	// Hello from the phasegate mock LLM.
	// usage: 2 + 6 = 8
}

// A Mock is an http.Handler, so it can also run under httptest. Behaviour
// headers shape the reply; here a streamed completion in three chunks.
func ExampleNew_streaming() {
	ts := httptest.NewServer(mockllm.New(mockllm.Options{}))
	defer ts.Close()

	req, err := http.NewRequest(http.MethodPost, ts.URL+mockllm.PathChatCompletions,
		strings.NewReader(`{"model":"m","stream":true,"stream_options":{"include_usage":true},`+
			`"messages":[{"role":"user","content":"Count to three"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(mockllm.HeaderContent, "one two three")
	req.Header.Set(mockllm.HeaderChunks, "3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()

	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue // blank line between events
		}
		if data == "[DONE]" {
			fmt.Println("[DONE]")
			break
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				TotalTokens int `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			log.Fatal(err)
		}
		switch {
		case chunk.Usage != nil:
			fmt.Println("usage: total", chunk.Usage.TotalTokens)
		case chunk.Choices[0].Delta.Role != "":
			fmt.Println("role:", chunk.Choices[0].Delta.Role)
		case chunk.Choices[0].FinishReason != nil:
			fmt.Println("finish:", *chunk.Choices[0].FinishReason)
		default:
			fmt.Printf("content: %q\n", chunk.Choices[0].Delta.Content)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	// Output:
	// role: assistant
	// content: "one "
	// content: "two "
	// content: "three"
	// finish: stop
	// usage: total 6
	// [DONE]
}

// Fault injection: X-Mock-Status turns any request into an error reply.
func ExampleHeaderStatus() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL()+mockllm.PathChatCompletions,
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set(mockllm.HeaderStatus, "429")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()

	var body struct {
		Error struct {
			Type string `json:"type"`
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, body.Error.Type, body.Error.Code)
	// Output:
	// 429 requests rate_limit_exceeded
}

// Moderation flags configured words, case-insensitively and as whole words
// only, one result per input.
func ExampleOptions_moderationWords() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{ModerationWords: []string{"forbidden"}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	resp, err := http.Post(srv.URL()+mockllm.PathModerations, "application/json",
		strings.NewReader(`{"input":["a FORBIDDEN word","unforbidden","hello"]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()

	var out struct {
		Results []struct {
			Flagged bool `json:"flagged"`
		} `json:"results"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		log.Fatal(err)
	}
	for _, r := range out.Results {
		fmt.Println(r.Flagged)
	}
	// Output:
	// true
	// false
	// false
}

// Stats lets a test check how upstream requests ended.
func ExampleMock_Stats() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	resp, err := http.Get(srv.URL() + mockllm.PathHealth)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	if err := srv.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", srv.Mock().Stats())
	// Output:
	// {Requests:1 Active:0 Completed:1 Canceled:0 Aborted:0}
}

// The Messages door answers Anthropic clients with the same text and the
// same token counts as the chat door, in Anthropic's shape.
func Example_messages() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	const body = `{"model":"claude-sonnet-4-5","max_tokens":256,"system":"Be brief.",` +
		`"messages":[{"role":"user","content":"Say hello"}]}`
	resp, err := http.Post(srv.URL()+mockllm.PathMessages, "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct {
		ID      string `json:"id"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
		Usage      struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.ID, msg.StopReason)
	fmt.Println(msg.Content[0].Type, msg.Content[0].Text)
	fmt.Printf("usage: %d in, %d out\n", msg.Usage.InputTokens, msg.Usage.OutputTokens)

	// count_tokens counts the same way.
	count, err := http.Post(srv.URL()+mockllm.PathCountTokens, "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	defer count.Body.Close()
	raw, err := io.ReadAll(count.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(raw))
	// Output:
	// msg_mock_1 end_turn
	// text Hello from the phasegate mock LLM.
	// usage: 4 in, 6 out
	// {"input_tokens":4}
}

// A request that offers tools gets a call of the first one, with the
// arguments X-Mock-Tool-Arguments gives; one that answers a call gets text.
func ExampleHeaderToolArguments() {
	srv, err := mockllm.Start("127.0.0.1:0", mockllm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL()+mockllm.PathMessages, strings.NewReader(
		`{"model":"m","max_tokens":256,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],`+
			`"messages":[{"role":"user","content":"Weather in Paris?"}]}`))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set(mockllm.HeaderToolArguments, `{"city":"Paris"}`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var msg struct {
		Content []struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
		StopReason string `json:"stop_reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil {
		log.Fatal(err)
	}
	call := msg.Content[0]
	fmt.Println(msg.StopReason, call.Type, call.ID, call.Name, string(call.Input))
	// Output:
	// tool_use tool_use toolu_mock_1 get_weather {"city":"Paris"}
}
