// Package llm is the protocol-neutral model of an LLM exchange: a request,
// a response, the events of a streamed response and an error, whichever of
// the wire protocols in [Protocol] the client or the provider speaks.
//
// A [Codec] reads and writes one protocol (packages llm/openai and
// llm/anthropic hold them). Translating is decoding with one codec and
// encoding with another: requests and whole responses in one call each,
// streams one server-sent event at a time through a [StreamTranslator],
// which appends the other protocol's wire bytes to the caller's buffer.
// docs/protocols.md has the mapping tables and what cannot be translated.
//
// The model is also what the gateway's plugins read, so that a prompt
// guard, moderation, metrics and rate limits see the same thing whatever
// door a request came through: [Request.Texts] and [Choice.Texts] visit
// every text a model reads or writes, [Usage] counts tokens the same way
// for every provider, and [StopReason] names why generation stopped.
package llm

// Protocol names a wire protocol.
type Protocol string

// The protocols the codecs speak.
const (
	// OpenAIChat is OpenAI Chat Completions (POST /v1/chat/completions).
	OpenAIChat Protocol = "openai-chat"
	// AnthropicMessages is Anthropic Messages (POST /v1/messages).
	AnthropicMessages Protocol = "anthropic-messages"
	// OpenAIResponses is OpenAI Responses (POST /v1/responses), without
	// the parts that need state kept by the server.
	OpenAIResponses Protocol = "openai-responses"
)

// Protocols lists every protocol, in a fixed order.
func Protocols() []Protocol {
	return []Protocol{OpenAIChat, AnthropicMessages, OpenAIResponses}
}

// Valid reports whether p is one of [Protocols].
func (p Protocol) Valid() bool {
	switch p {
	case OpenAIChat, AnthropicMessages, OpenAIResponses:
		return true
	}
	return false
}

// Codec reads and writes one protocol's requests, responses, streams and
// errors. Implementations are safe for concurrent use; the stream decoders
// and encoders they create are not.
type Codec interface {
	// Protocol names the protocol.
	Protocol() Protocol

	// DecodeRequest reads a request body. An invalid body gives an *Error
	// with status 400 whose message names the offending field. Decoding
	// is lenient about what it does not model (unknown fields are
	// ignored, unknown content becomes a PartOther), so that a body sent
	// on unchanged can still be read; encoding for another protocol is
	// where untranslatable content is refused.
	DecodeRequest(body []byte) (*Request, error)
	// EncodeRequest writes r as a request body. What the protocol cannot
	// express gives an *Error with status 400.
	EncodeRequest(r *Request) ([]byte, error)

	// DecodeResponse reads a non-streamed response body.
	DecodeResponse(body []byte) (*Response, error)
	// EncodeResponse writes a non-streamed response body. req, which may
	// be nil, is the request it answers; some protocols echo parts of it.
	EncodeResponse(r *Response, req *Request) []byte

	// NewStreamDecoder returns a decoder for one streamed response.
	NewStreamDecoder() StreamDecoder
	// NewStreamEncoder returns an encoder for one streamed response to
	// req, which may be nil.
	NewStreamEncoder(req *Request) StreamEncoder

	// DecodeError reads an error response of the protocol, given its HTTP
	// status. A body it cannot read still gives an Error, with the status
	// and a message saying so.
	DecodeError(status int, body []byte) *Error
	// EncodeError writes e as the protocol's error body.
	EncodeError(e *Error) []byte
}
