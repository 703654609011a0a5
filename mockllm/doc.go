// Package mockllm is a deterministic mock LLM upstream that speaks OpenAI
// Chat Completions and Anthropic Messages.
//
// It backs the phasegate demo ("phasegate mock-llm --listen ADDR"), the
// gateway end-to-end tests and the soak test with fault injection. A [Mock]
// is an [http.Handler]; [Start] and [ListenAndServe] run it on a real socket.
//
// # Endpoints
//
//   - POST /v1/chat/completions: OpenAI chat completions, streaming
//     ("stream": true, server-sent events) and non-streaming.
//   - POST /v1/messages: Anthropic Messages, streaming and non-streaming,
//     with the same answers (see Messages below).
//   - POST /v1/messages/count_tokens: Anthropic's token count,
//     {"input_tokens": N}, N counted as /v1/messages counts its input.
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
// Errors on /v1/messages and the paths under it, whatever their cause (a bad
// request, a behaviour header, an injected status), have Anthropic's shape
// instead, with the type Anthropic gives their status (429
// rate_limit_error, 529 overloaded_error, ...):
//
//	{"type":"error","error":{"type":"invalid_request_error","message":"..."}}
//
// Neither door checks credentials: Authorization, x-api-key and
// anthropic-version are accepted and ignored, so that the demo needs no key.
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
// per-message overhead; tool messages count, tool calls, tool definitions and
// images do not), completion_tokens is the number of whitespace-separated
// words in the completion text plus those of a tool call's arguments, and
// total_tokens is their sum. [HeaderPromptTokens] and
// [HeaderCompletionTokens] override the counts.
//
// # Tool calls
//
// A request that offers function tools gets a tool call instead of text,
// unless its tool choice is none or its last message carries tool results
// (a Chat "tool" message, Anthropic tool_result blocks): then the client's
// tool loop ends with a text answer. The call is to the tool the tool choice
// names, or else to the first tool offered; its arguments are
// [HeaderToolArguments] ("{}" by default), its id "call_mock_N" (Chat) or
// "toolu_mock_N" (Messages), numbered in sequence per [Mock]. The reply has
// no text unless [HeaderContent] gives a non-empty one, which comes before
// the call; it stops with finish_reason "tool_calls" (Messages: stop_reason
// "tool_use"). A Chat reply's message has "content": null beside its
// "tool_calls"; streamed, the call's first chunk carries its index, id, type
// and name with empty arguments, and the arguments follow in [HeaderChunks]
// pieces.
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
// # Messages
//
// The request must have a "model", a non-empty "messages" array and
// "max_tokens" >= 1 (count_tokens needs no max_tokens); it is read by the
// llm/anthropic codec, whose errors name the offending field. The reply is
// the one the chat door gives the same conversation, written by that codec:
// id "msg_mock_N", the request's model, the completion text as a text
// block, a tool_use block for a tool call, stop_reason "end_turn" or
// "tool_use", and usage in Anthropic's terms. Input tokens are counted as
// prompt_tokens are, over the system prompt, text blocks and tool results;
// with [HeaderUsageDetails] input_tokens leaves out the two tokens reported
// as cache_read_input_tokens, as Anthropic's usage does.
//
// A streamed reply is message_start (its usage has the input counts),
// ping, content_block_start, content_block_delta (text_delta, or
// input_json_delta for a tool call's arguments) in [HeaderChunks] pieces per
// block, content_block_stop, then message_delta with the stop reason and the
// whole usage (cumulative, as Anthropic sends it) and message_stop. Every
// event has an "event:" line naming its type.
//
// # Behaviour headers
//
// Request headers named by the Header* constants select faults and timings,
// so that tests and demos need nothing but an HTTP client. They apply to
// every endpoint but GET /healthz, the same way on both doors, in this
// order:
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
