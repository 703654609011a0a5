package openai

// EachTextStrict is EachText without its fast path for the common chunk
// shape: the strict walk that fast path must agree with.
func EachTextStrict(body, scratch []byte, fn func(ResponseText)) ([]byte, bool) {
	return eachText(body, scratch, fn, false)
}

// ChunkChoicesFast reports whether the fast path reads choices, a valid
// JSON array, itself.
func ChunkChoicesFast(choices []byte) bool {
	var w textWalk
	return w.chunkChoices(choices, func(ResponseText) {})
}
