package mockllm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Moderation scores reported for a category that is hit and one that is not.
const (
	flaggedScore   = 0.99
	unflaggedScore = 0.01
)

type moderationRequest struct {
	Input json.RawMessage `json:"input"`
	Model string          `json:"model"`
}

type moderationResponse struct {
	ID      string             `json:"id"`
	Model   string             `json:"model"`
	Results []moderationResult `json:"results"`
}

type moderationResult struct {
	Flagged        bool           `json:"flagged"`
	Categories     categoryFlags  `json:"categories"`
	CategoryScores categoryScores `json:"category_scores"`
}

type categoryFlags struct {
	Violence   bool `json:"violence"`
	Hate       bool `json:"hate"`
	Harassment bool `json:"harassment"`
	SelfHarm   bool `json:"self-harm"`
	Sexual     bool `json:"sexual"`
}

type categoryScores struct {
	Violence   float64 `json:"violence"`
	Hate       float64 `json:"hate"`
	Harassment float64 `json:"harassment"`
	SelfHarm   float64 `json:"self-harm"`
	Sexual     float64 `json:"sexual"`
}

// moderate serves POST /v1/moderations.
func (m *Mock) moderate(w http.ResponseWriter, r *http.Request, b *behaviour) outcome {
	body, res, ok := readRequest(w, r, b, doorOpenAI)
	if !ok {
		return res
	}
	var req moderationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, apiError{
			Message: fmt.Sprintf("We could not parse the JSON body of your request: %v", err),
			Type:    "invalid_request_error",
		})
		return outcomeCompleted
	}
	inputs, err := moderationInputs(req.Input)
	if err != nil {
		writeError(w, http.StatusBadRequest, apiError{
			Message: err.Error(),
			Type:    "invalid_request_error",
			Param:   new("input"),
		})
		return outcomeCompleted
	}

	resp := moderationResponse{
		ID:      fmt.Sprintf("modr-mock-%d", m.modSeq.Add(1)),
		Model:   req.Model,
		Results: make([]moderationResult, len(inputs)),
	}
	if resp.Model == "" {
		resp.Model = DefaultModerationModel
	}
	for i, in := range inputs {
		hit := m.flags(in)
		res := moderationResult{
			Flagged:    hit,
			Categories: categoryFlags{Violence: hit},
			CategoryScores: categoryScores{
				Violence:   unflaggedScore,
				Hate:       unflaggedScore,
				Harassment: unflaggedScore,
				SelfHarm:   unflaggedScore,
				Sexual:     unflaggedScore,
			},
		}
		if hit {
			res.CategoryScores.Violence = flaggedScore
		}
		resp.Results[i] = res
	}
	return respondJSON(w, r, b, doorOpenAI, resp)
}

// moderationInputs decodes "input": a string or a non-empty array of
// strings.
func moderationInputs(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("you must provide an input parameter")
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("input must be a string or an array of strings")
	}
	if len(many) == 0 {
		return nil, fmt.Errorf("input must not be an empty array")
	}
	return many, nil
}

// flags reports whether text contains one of the moderation words as a
// whole word, ignoring case.
func (m *Mock) flags(text string) bool {
	text = strings.ToLower(text)
	for _, word := range m.modWords {
		if containsWord(text, word) {
			return true
		}
	}
	return false
}

// containsWord reports whether word occurs in text with no word character
// (letter, digit, underscore) immediately before or after it. Both are
// lower case.
func containsWord(text, word string) bool {
	for off := 0; off <= len(text)-len(word); {
		i := strings.Index(text[off:], word)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(word)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if (start == 0 || !isWordRune(before)) && (end == len(text) || !isWordRune(after)) {
			return true
		}
		_, size := utf8.DecodeRuneInString(text[start:])
		off = start + size
	}
	return false
}

func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)
}
