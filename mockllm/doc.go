// Package mockllm is a deterministic, OpenAI-compatible mock LLM upstream.
//
// It backs the phasegate demo ("phasegate mock-llm --listen ADDR"), the
// gateway end-to-end tests and the soak test with fault injection. A [Mock]
// is an [http.Handler]; [Start] and [ListenAndServe] run it on a real socket.
//
// # Endpoints
//
//   - POST /v1/chat/completions: OpenAI chat completions, streaming
//     ("stream": true, server-sent events) and non-streaming.
//   - POST /v1/moderations: OpenAI moderations. "input" is a string or an
//     array of strings, with one result per string. An input is flagged
//     (category "violence", score 0.99) when it contains one of
//     [Options.ModerationWords] as a whole word, compared case-insensitively;
//     the categories violence, hate, harassment, self-harm and sexual are
//     reported, all false with score 0.01 otherwise. The reply's model is
//     the request's, or [DefaultModerationModel].
//   - GET /healthz: 200 "ok".
//
// Any other path gets a 404 and a known path with the wrong method a 405 with
// an Allow header, both with an OpenAI-style JSON error body:
//
//	{"error":{"message":"...","type":"invalid_request_error","param":null,"code":null}}
//
// # Chat completions
//
// The request must be a JSON object (Content-Type application/json, or no
// Content-Type at all) with a non-empty "model" and a non-empty "messages"
// array. A message "content" may be a string, null, or an array of parts of
// which those with "type":"text" count. The reply echoes the model and
// carries the completion text, which is [Options.DefaultContent] unless the
// request sets [HeaderContent].
//
// Token counting is deliberately simple and deterministic: prompt_tokens is
// the number of whitespace-separated words across all message contents (no
// per-message overhead), completion_tokens is the number of
// whitespace-separated words in the completion text, and total_tokens is
// their sum. [HeaderPromptTokens] and [HeaderCompletionTokens] override the
// counts.
//
// A streamed reply (Content-Type text/event-stream) is a sequence of
// "data: {json}\n\n" events, each flushed as soon as it is written:
//
//  1. a role chunk: delta {"role":"assistant","content":""};
//  2. N content chunks (N = [HeaderChunks], default [DefaultStreamChunks]):
//     the completion text split into N nearly equal pieces on word
//     boundaries, or on character boundaries when it has fewer than N words;
//     the pieces concatenate to exactly the completion text, and some may be
//     empty when the text has fewer than N characters;
//  3. a chunk with an empty delta and "finish_reason":"stop";
//  4. only with "stream_options":{"include_usage":true}, a chunk with
//     "choices":[] and "usage", as OpenAI sends it;
//  5. "data: [DONE]".
//
// All chunks of one reply share id, created and model.
//
// # Behaviour headers
//
// Request headers named by the Header* constants select faults and timings,
// so that tests and demos need nothing but an HTTP client. They apply to
// chat completions and moderations, in this order:
//
//  1. every header is validated; an invalid value yields a 400 whose error
//     "param" names the header;
//  2. [HeaderHeaderDelay] delays the response;
//  3. [HeaderStatus] replies with an error status (before the request body
//     is validated);
//  4. the request body is validated (400 on errors);
//  5. [HeaderHang] and [HeaderResetAfter] act, then the reply is written,
//     shaped by the remaining headers.
//
// Every wait observes the request context, so a handler returns as soon as
// its client goes away; such requests are counted in [Stats].Canceled. Waits
// also end when the [Server] running the mock is closed.
package mockllm
