package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Message is a parsed body; parse once, evaluate many times.
type Message struct {
	root any
}

// Parse decodes body as a single JSON value of any kind. Numbers stay
// json.Number so that identifiers such as 12345678901234567890 keep their
// exact text when stringified.
func Parse(body []byte) (*Message, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("invalid JSON: empty body")
		}
		// Decoder errors quote at most the offending character, never the body.
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	// A second value or garbage after the first would otherwise be silently
	// dropped, hiding a sender bug.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid JSON: trailing data after offset %d", dec.InputOffset())
	}
	return &Message{root: root}, nil
}

// stringify renders a selected node as text for mapping and comparison.
func stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		var b strings.Builder
		enc := json.NewEncoder(&b)
		// Keep "<", ">" and "&" readable; the output is shown to humans, not
		// embedded in HTML.
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			// Unreachable for decoder output; an empty value is the safe answer.
			return ""
		}
		return strings.TrimSuffix(b.String(), "\n")
	}
}
