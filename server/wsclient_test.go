package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const (
	protoTransportWS = "graphql-transport-ws"
	protoLegacyWS    = "graphql-ws"
)

// wsClient is a GraphQL websocket client speaking either protocol.
type wsClient struct {
	t     *testing.T
	conn  *websocket.Conn
	proto string
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialWS opens a websocket to /graphql; it does not send connection_init.
func (h *harness) dialWS(proto string, header http.Header) (*wsClient, *http.Response, error) {
	url := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/graphql"
	dialer := websocket.Dialer{Subprotocols: []string{proto}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := dialer.Dial(url, header)
	if err != nil {
		return nil, resp, err
	}
	c := &wsClient{t: h.t, conn: conn, proto: proto}
	h.t.Cleanup(func() { conn.Close() })
	return c, resp, nil
}

// connect dials and completes connection_init with token.
func (h *harness) connect(proto, token string) *wsClient {
	h.t.Helper()
	c, _, err := h.dialWS(proto, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", proto, err)
	}
	if conn := c.init(token); conn != "connection_ack" {
		h.t.Fatalf("connection_init: got %s", conn)
	}
	return c
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.t.Fatalf("websocket write: %v", err)
	}
}

// init sends connection_init and returns the type of the answer.
func (c *wsClient) init(token string) string {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + token})
	c.send(wsMessage{Type: "connection_init", Payload: payload})
	m, err := c.read(5 * time.Second)
	if err != nil {
		return "error: " + err.Error()
	}
	return m.Type
}

func (c *wsClient) subscribe(id, query string, vars map[string]any) {
	c.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if c.proto == protoLegacyWS {
		typ = "start"
	}
	c.send(wsMessage{ID: id, Type: typ, Payload: payload})
}

// read returns the next message that is not a keep-alive, answering pings.
func (c *wsClient) read(timeout time.Duration) (wsMessage, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.conn.SetReadDeadline(deadline)
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			return m, err
		}
		switch m.Type {
		case "ka", "pong":
			continue
		case "ping":
			c.conn.WriteJSON(wsMessage{Type: "pong"})
			continue
		}
		return m, nil
	}
}

// nextData reads the next result of operation id, failing on anything else.
func (c *wsClient) nextData(id string, out any) []gqlError {
	c.t.Helper()
	m, err := c.read(10 * time.Second)
	if err != nil {
		c.t.Fatalf("waiting for %s data: %v", id, err)
	}
	want := "next"
	if c.proto == protoLegacyWS {
		want = "data"
	}
	if m.Type != want || m.ID != id {
		c.t.Fatalf("waiting for %s %s: got %s %s %s", want, id, m.Type, m.ID, m.Payload)
	}
	var result struct {
		Data   json.RawMessage `json:"data"`
		Errors []gqlError      `json:"errors"`
	}
	if err := json.Unmarshal(m.Payload, &result); err != nil {
		c.t.Fatalf("decode %s: %v", m.Payload, err)
	}
	if len(result.Errors) == 0 && out != nil {
		if err := json.Unmarshal(result.Data, out); err != nil {
			c.t.Fatalf("decode data %s: %v", result.Data, err)
		}
	}
	return result.Errors
}

// closeCode waits for the server to close the socket and returns its code.
func (c *wsClient) closeCode(timeout time.Duration) int {
	c.t.Helper()
	for {
		_, err := c.read(timeout)
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if ok := asCloseError(err, &ce); ok {
			return ce.Code
		}
		c.t.Fatalf("expected a close frame, got %v", err)
	}
}

func asCloseError(err error, target **websocket.CloseError) bool {
	ce, ok := err.(*websocket.CloseError)
	if ok {
		*target = ce
	}
	return ok
}

type alertEventData struct {
	AlertEvents struct {
		Cursor string `json:"cursor"`
		Type   string `json:"type"`
		Alert  struct {
			ID       string `json:"id"`
			Status   string `json:"status"`
			Severity string `json:"severity"`
			Subject  string `json:"subject"`
		} `json:"alert"`
	} `json:"alertEvents"`
}

type inboundLogData struct {
	InboundLog struct {
		ID     string `json:"id"`
		Cursor string `json:"cursor"`
		Status string `json:"status"`
		Alert  *struct {
			ID string `json:"id"`
		} `json:"alert"`
	} `json:"inboundLog"`
}

const alertEventsQuery = `subscription($filter: AlertEventFilter, $after: String) {
	alertEvents(filter: $filter, after: $after) { cursor type alert { id status severity subject } } }`

const inboundLogQuery = `subscription($integrationId: ID, $after: String) {
	inboundLog(integrationId: $integrationId, after: $after) { id cursor status alert { id } } }`

func (c *wsClient) nextAlertEvent(id string) alertEventData {
	c.t.Helper()
	var d alertEventData
	if errs := c.nextData(id, &d); len(errs) > 0 {
		c.t.Fatalf("alertEvents error: %+v", errs)
	}
	return d
}

func (c *wsClient) nextInbound(id string) inboundLogData {
	c.t.Helper()
	var d inboundLogData
	if errs := c.nextData(id, &d); len(errs) > 0 {
		c.t.Fatalf("inboundLog error: %+v", errs)
	}
	return d
}

func describe(d alertEventData) string {
	return fmt.Sprintf("%s %s %s", d.AlertEvents.Type, d.AlertEvents.Alert.ID, d.AlertEvents.Alert.Status)
}
