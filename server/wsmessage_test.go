package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// encodeAsJSON is encoding/json's encoding of v, less its HTML escaping.
func encodeAsJSON(t *testing.T, v any) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// The messages the websocket writes, read back from a real socket, are
// what encoding/json makes of the same values.
func TestWebsocketMessagesEncodeAsEncodingJSONDoes(t *testing.T) {
	type envelope struct {
		Payload json.RawMessage `json:"payload,omitempty"`
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
	}
	hasNext := false
	responses := []*graphql.Response{
		{Data: json.RawMessage(`{"alertEvents":{"alert":{"subject":"x < y & \"z\""}}}`)},
		{Errors: gqlerror.List{{Message: "too slow", Extensions: map[string]any{"code": "SUBSCRIBER_TOO_SLOW"}}}},
		{Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}},
		{Data: json.RawMessage(`{"a":1}`), HasNext: &hasNext, Label: "deferred"},
	}
	messages := []envelope{
		{Type: "ping"},
		{Type: "pong", Payload: json.RawMessage(`{"a":1}`)},
		{Type: "error", ID: "quote\" back\\slash <tag> & ünïcode \n", Payload: json.RawMessage(`[{"message":"bad"}]`)},
		{Type: "complete", ID: "7"},
	}

	server := make(chan *gorillaConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			t.Errorf("upgrade: %v", err)
			return
		}
		server <- newGorillaConn(conn)
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn := <-server
	defer conn.Close()

	check := func(want string) {
		t.Helper()
		_, got, err := client.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	for _, m := range messages {
		if err := conn.writeMessage(m.Type, m.ID, m.Payload); err != nil {
			t.Fatal(err)
		}
		check(encodeAsJSON(t, m))
	}
	for _, resp := range responses {
		if err := conn.writeResponse("next", "sub-1", resp); err != nil {
			t.Fatal(err)
		}
		check(encodeAsJSON(t, envelope{Type: "next", ID: "sub-1", Payload: json.RawMessage(encodeAsJSON(t, resp))}))
	}
}
