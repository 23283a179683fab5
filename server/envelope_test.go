package server

import (
	"encoding/json"
	"testing"
)

// The shape of gqlgen's websocket messages, whose types are unexported.
type testMessageType string

func (t testMessageType) MarshalText() ([]byte, error) { return []byte(t), nil }

type testMessage struct {
	Payload json.RawMessage `json:"payload,omitempty"`
	ID      string          `json:"id,omitempty"`
	Type    testMessageType `json:"type"`
	noOp    bool
}

func TestEnvelopeEncodesAsEncodingJSONDoes(t *testing.T) {
	for _, m := range []*testMessage{
		{Type: "ping"},
		{Type: "connection_ack", Payload: json.RawMessage(`{"a":1}`)},
		{Type: "next", ID: "sub-1", Payload: json.RawMessage(`{"data":{"alertEvents":{"alert":{"subject":"x \u003c y"}}}}`)},
		{Type: "error", ID: "quote\" back\\slash <tag> & ünïcode \n", Payload: json.RawMessage(`[{"message":"bad"}]`)},
		{Type: "complete", ID: "7"},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendEnvelope(nil, m)
		if !ok {
			t.Fatalf("%+v: not recognised as a message", m)
		}
		if string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

func TestEnvelopeLeavesOtherValuesToEncodingJSON(t *testing.T) {
	type extra struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		More    int             `json:"more"`
	}
	for _, v := range []any{
		map[string]string{"type": "ping"},
		&extra{Type: "ping"},
		(*testMessage)(nil),
		testMessage{Type: "ping"},
	} {
		if _, ok := appendEnvelope(nil, v); ok {
			t.Errorf("%#v was taken for a message", v)
		}
	}
}
