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

// MaxDepth bounds how deeply a body may nest objects and arrays. No
// monitoring tool nests anywhere near it; a body that does is hostile or
// broken, and refusing it keeps decoding and JSONPath queries shallow.
const MaxDepth = 1000

// utf8BOM is the byte order mark some senders (.NET, PowerShell) put in
// front of their JSON; RFC 8259 lets a parser ignore it.
var utf8BOM = []byte("\xef\xbb\xbf")

// Parse decodes body as one JSON object: a webhook carries one message,
// and anything else (most often an array, a batch of messages) would
// otherwise match no rule and look ignored rather than broken. Numbers
// stay json.Number so that identifiers such as 12345678901234567890 keep
// their exact text when stringified. Errors start with "invalid JSON: " or
// "not a JSON object: ", and never quote the body.
func Parse(body []byte) (*Message, error) {
	offset := 0
	if bytes.HasPrefix(body, utf8BOM) {
		body, offset = body[len(utf8BOM):], len(utf8BOM)
	}
	if depth(body) > MaxDepth {
		return nil, fmt.Errorf("invalid JSON: nested deeper than %d levels", MaxDepth)
	}
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
	end := offset + int(dec.InputOffset())
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("invalid JSON: trailing data after offset %d", end)
	}
	if _, ok := root.(map[string]any); !ok {
		return nil, fmt.Errorf("not a JSON object: the body is %s; send one JSON object per message", kindOf(root))
	}
	return &Message{root: root}, nil
}

// depth is how deeply body nests objects and arrays, reading brackets
// outside strings; it only has to be right for bodies the decoder would
// accept.
func depth(body []byte) int {
	d, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			d++
			if d > MaxDepth {
				return d
			}
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "not an object"
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
