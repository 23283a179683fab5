package server_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
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
	t     testing.TB
	conn  *websocket.Conn
	proto string

	// A background reader feeds msgs, so a read can time out without
	// breaking the connection (a gorilla read deadline is final).
	startReader sync.Once
	msgs        chan wsResult
	wmu         sync.Mutex
	// held keeps messages of other operations read while waiting for one.
	held map[string][]wsMessage
}

type wsResult struct {
	msg wsMessage
	err error
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
	c := &wsClient{t: h.t, conn: conn, proto: proto, msgs: make(chan wsResult, 1024)}
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

// connectStuck dials and completes connection_init, then never reads
// again unless told to.
func (h *harness) connectStuck(proto, token string) *wsClient {
	h.t.Helper()
	c, _, err := h.dialWS(proto, nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", proto, err)
	}
	payload, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + token})
	c.send(wsMessage{Type: "connection_init", Payload: payload})
	var ack wsMessage
	if err := c.conn.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		h.t.Fatalf("connection_init: %v %+v", err, ack)
	}
	return c
}

func (c *wsClient) send(m wsMessage) {
	c.t.Helper()
	if err := c.write(m); err != nil {
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

func (c *wsClient) write(m wsMessage) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.conn.WriteJSON(m)
}

// read returns the next message that is not a keep-alive, answering pings.
func (c *wsClient) read(timeout time.Duration) (wsMessage, error) {
	c.startReader.Do(func() {
		go func() {
			for {
				var m wsMessage
				err := c.conn.ReadJSON(&m)
				c.msgs <- wsResult{m, err}
				if err != nil {
					return
				}
			}
		}()
	})
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case r := <-c.msgs:
			if r.err != nil {
				// Every later read reports the same end.
				c.msgs <- r
				return r.msg, r.err
			}
			switch r.msg.Type {
			case "ka", "pong":
				continue
			case "ping":
				c.write(wsMessage{Type: "pong"})
				continue
			}
			return r.msg, nil
		case <-timer.C:
			return wsMessage{}, errReadTimeout
		}
	}
}

var errReadTimeout = errors.New("no message in time")

// awaitAlert reads alertEvents of operation id until one is about alertID.
func (c *wsClient) awaitAlert(id, alertID string) alertEventData {
	c.t.Helper()
	for {
		if e := c.nextAlertEvent(id); e.AlertEvents.Alert.ID == alertID {
			return e
		}
	}
}

// primed posts warm-up findings until the alertEvents subscription id
// sees one, and returns that event's cursor.
func (h *harness) primed(c *wsClient, id, token string) string {
	h.t.Helper()
	_, _, seen := h.postUntilLive(c, token, id)
	var e alertEventData
	if err := jsonUnmarshalData(seen[id].Payload, &e); err != nil {
		h.t.Fatal(err)
	}
	return e.AlertEvents.Cursor
}

// postUntilLive posts new high findings until every subscription in ids
// (alertEvents or inboundLog) has delivered the same one, and returns it
// with what each delivered. Nothing tells a client when a subscription
// has started; only an event proves it, and one posted before then is
// rightly not delivered.
func (h *harness) postUntilLive(c *wsClient, token string, ids ...string) (string, *webhookReply, map[string]wsMessage) {
	h.t.Helper()
	for range 100 {
		uuid := h.unique("finding")
		r := h.postWebhook(token, finding(uuid, "high"))
		seen := map[string]wsMessage{}
		for len(seen) < len(ids) {
			m, err := c.read(250 * time.Millisecond)
			if errors.Is(err, errReadTimeout) {
				break
			}
			if err != nil {
				h.t.Fatalf("waiting for the subscriptions to start: %v", err)
			}
			var d struct {
				AlertEvents *struct {
					Alert struct{ ID string }
				}
				InboundLog *struct{ ID string }
			}
			if !slices.Contains(ids, m.ID) || jsonUnmarshalData(m.Payload, &d) != nil {
				continue
			}
			if (d.AlertEvents != nil && d.AlertEvents.Alert.ID == r.alert()) || (d.InboundLog != nil && d.InboundLog.ID == r.MessageID) {
				seen[m.ID] = m
			}
		}
		if len(seen) == len(ids) {
			return uuid, r, seen
		}
	}
	h.t.Fatalf("subscriptions %v never delivered a webhook posted after they were made", ids)
	return "", nil, nil
}

// nextData reads the next result of operation id, failing on anything else.
func (c *wsClient) nextData(id string, out any) []gqlError {
	c.t.Helper()
	var m wsMessage
	if held := c.held[id]; len(held) > 0 {
		m, c.held[id] = held[0], held[1:]
	} else {
		for {
			var err error
			m, err = c.read(10 * time.Second)
			if err != nil {
				c.t.Fatalf("waiting for %s data: %v", id, err)
			}
			if m.ID == id || m.ID == "" {
				break
			}
			if c.held == nil {
				c.held = map[string][]wsMessage{}
			}
			c.held[m.ID] = append(c.held[m.ID], m)
		}
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
