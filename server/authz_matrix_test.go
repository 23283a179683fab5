package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// schemaFields lists the fields of the root types the server serves, as
// "Query.me", by introspection.
func (h *harness) schemaFields() []string {
	h.t.Helper()
	var data struct {
		Schema map[string]*struct {
			Name   string `json:"name"`
			Fields []struct {
				Name string `json:"name"`
			} `json:"fields"`
		} `json:"__schema"`
	}
	h.mustGQL("", `{ __schema {
		queryType { name fields { name } }
		mutationType { name fields { name } }
		subscriptionType { name fields { name } } } }`, nil, &data)
	var names []string
	for _, typ := range data.Schema {
		if typ == nil {
			continue
		}
		for _, fld := range typ.Fields {
			names = append(names, typ.Name+"."+fld.Name)
		}
	}
	slices.Sort(names)
	if len(names) == 0 {
		h.t.Fatal("introspection found no fields")
	}
	return names
}

// TestAuthzMatrix calls every query, mutation and subscription of the
// schema as anonymous, VIEWER, RESPONDER, ADMIN and, for per-user data,
// its owner, and checks each answer against authzTable.
func TestAuthzMatrix(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f0 := newAuthzFixture(t, d)
		fields := f0.schemaFields()
		for _, name := range fields {
			if _, ok := authzTable[name]; !ok {
				t.Errorf("add an authorization expectation for %s to authzTable", name)
			}
		}
		for name := range authzTable {
			if !slices.Contains(fields, name) {
				t.Errorf("authzTable has %s, which the schema no longer has", name)
			}
		}
		if t.Failed() {
			return
		}
		for _, name := range fields {
			e := authzTable[name]
			root, field, _ := strings.Cut(name, ".")
			if root == "Subscription" {
				t.Run(name, func(t *testing.T) { checkSubscription(t, f0.with(t), field, e) })
				continue
			}
			if root == "Mutation" && e.state == nil && e.rule != ruleAnyone {
				t.Errorf("%s needs a state check, to show a refused call changes nothing", name)
				continue
			}
			for _, c := range e.callers() {
				t.Run(name+"/"+c.name, func(t *testing.T) { checkCall(f0.with(t), field, e, c) })
			}
		}
	})
}

func checkCall(f *authzFixture, field string, e authzEntry, c authzCaller) {
	t := f.t
	call := authzCall{}
	if e.fixture != nil {
		call = e.fixture(f)
	}
	switch {
	case c.owner:
		if call.owner.Token == "" {
			t.Fatal("a self-or-admin entry's fixture must name the owner")
		}
		call.as = call.owner
	case c.role == "":
	case c.team != "" && !e.freshCaller:
		call.as = f.teamMembers[c.name]
	case e.freshCaller:
		call.as = f.newUser(c.role)
	case c.role == db.RoleViewer:
		call.as = f.viewer
	case c.role == db.RoleResponder:
		call.as = f.responder
	case c.role == db.RoleAdmin:
		call.as = f.admin
	}
	var before string
	if e.state != nil {
		before = e.state(f, call)
	}
	call.vars = f.teamVars(e.doc, call.vars)
	r := f.gql(call.as.Token, e.doc, call.vars)
	if r.HTTPStatus != http.StatusOK {
		t.Fatalf("HTTP %d: %s", r.HTTPStatus, r.Raw)
	}
	var data map[string]json.RawMessage
	if !r.dataIsNull() {
		if err := json.Unmarshal(r.Data, &data); err != nil {
			t.Fatalf("data: %v: %s", err, r.Data)
		}
	}
	if e.allows(c) {
		if len(r.Errors) > 0 {
			t.Fatalf("%s may call %s (%s; teams: %s), got %s", c.name, field, e.rule, e.teamRule(), r.Raw)
		}
		if _, ok := data[field]; !ok {
			t.Fatalf("no %s in %s", field, r.Raw)
		}
		if e.state != nil {
			after := e.state(f, call)
			if e.noEffect && after != before {
				t.Errorf("%s changed %s → %s", field, before, after)
			}
			if !e.noEffect && after == before {
				t.Errorf("the state check does not see what %s did: still %s", field, after)
			}
		}
		return
	}
	want := "FORBIDDEN"
	if c.role == "" {
		want = "UNAUTHENTICATED"
	}
	if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != want {
		t.Fatalf("%s may not call %s (%s; teams: %s): want one %s error, got %s", c.name, field, e.rule, e.teamRule(), want, r.Raw)
	}
	if p := r.Errors[0].Path; len(p) != 1 || p[0] != field {
		t.Errorf("error path %v, want [%s]", p, field)
	}
	if v, ok := data[field]; ok && string(v) != "null" {
		t.Errorf("refused %s answered %s", field, v)
	}
	if e.state != nil {
		if after := e.state(f, call); after != before {
			t.Errorf("refused %s changed state: %s → %s", field, before, after)
		}
	}
}

// checkSubscription subscribes as every caller. A websocket carries no
// token per operation, so anonymous is refused when the socket opens,
// and a subscribe sent before that gets nothing.
func checkSubscription(t *testing.T, f *authzFixture, field string, e authzEntry) {
	if e.rule != ruleViewer {
		t.Fatalf("subscriptions are checked for %s only; extend checkSubscription for %s", ruleViewer, e.rule)
	}
	for _, c := range e.callers() {
		t.Run(c.name, func(t *testing.T) {
			f := f.with(t)
			if c.role == "" {
				checkAnonymousSubscribe(f, e.doc)
				return
			}
			if c.team == "B" {
				checkOtherTeamSubscribe(f, field, e.doc, f.teamMembers[c.name].Token)
				return
			}
			token := map[db.Role]string{db.RoleViewer: f.viewer.Token, db.RoleResponder: f.responder.Token, db.RoleAdmin: f.admin.Token}[c.role]
			if c.team != "" {
				token = f.teamMembers[c.name].Token
			}
			ws := f.connect(protoTransportWS, token)
			ws.subscribe("s", e.doc, nil)
			// Nothing says when the subscription is registered, so new
			// findings go in until one comes out.
			for range 100 {
				f.postFinding()
				m, err := ws.read(100 * time.Millisecond)
				if errors.Is(err, errReadTimeout) {
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", field, err)
				}
				var result struct {
					Data   map[string]json.RawMessage `json:"data"`
					Errors []gqlError                 `json:"errors"`
				}
				if err := json.Unmarshal(m.Payload, &result); err != nil {
					t.Fatalf("%s %s: %v", m.Type, m.Payload, err)
				}
				if m.Type != "next" || len(result.Errors) > 0 || string(result.Data[field]) == "null" || result.Data[field] == nil {
					t.Fatalf("%s may subscribe to %s, got %s %s", c.name, field, m.Type, m.Payload)
				}
				return
			}
			t.Fatalf("%s: no event", field)
		})
	}
}

// checkOtherTeamSubscribe subscribes as a member of team B, who may
// subscribe but must get none of team A's events. Each round posts a
// finding of A's and then one to an organisation-wide integration: the
// first event to arrive must be one of the latter, which shows the
// former were withheld without waiting on a clock.
func checkOtherTeamSubscribe(f *authzFixture, field, doc, token string) {
	t := f.t
	org := f.createIntegration("DETECTIFY")
	ws := f.connect(protoTransportWS, token)
	ws.subscribe("s", doc, nil)
	markers := map[string]bool{}
	for range 100 {
		f.postFinding()
		r := f.postWebhook(org.Token(t), finding(f.unique("org finding"), "high"))
		if r.HTTPStatus != http.StatusOK {
			t.Fatalf("post an organisation-wide finding: HTTP %d: %s", r.HTTPStatus, r.Raw)
		}
		markers[r.alert()], markers[r.MessageID] = true, true
		m, err := ws.read(100 * time.Millisecond)
		if errors.Is(err, errReadTimeout) {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		var result struct {
			Data map[string]struct {
				ID    string
				Alert *struct{ ID string }
			} `json:"data"`
			Errors []gqlError `json:"errors"`
		}
		if err := json.Unmarshal(m.Payload, &result); err != nil {
			t.Fatalf("%s %s: %v", m.Type, m.Payload, err)
		}
		if m.Type != "next" || len(result.Errors) > 0 {
			t.Fatalf("another team's member may subscribe to %s, got %s %s", field, m.Type, m.Payload)
		}
		got := result.Data[field]
		id := got.ID
		if got.Alert != nil {
			id = got.Alert.ID
		}
		if !markers[id] {
			t.Fatalf("another team's member got %s of team A: %s", field, m.Payload)
		}
		return
	}
	t.Fatalf("%s: no event", field)
}

func checkAnonymousSubscribe(f *authzFixture, doc string) {
	t := f.t
	for _, proto := range []string{protoTransportWS, protoLegacyWS} {
		c, _, err := f.dialWS(proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.init(""); got == "connection_ack" {
			t.Fatalf("%s: a websocket without a token was accepted", proto)
		}
		c, _, err = f.dialWS(proto, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.subscribe("s", doc, nil)
		f.postFinding()
		for {
			m, err := c.read(15 * time.Second)
			if err != nil {
				var ce *websocket.CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("%s: subscribe before connection_init: want the socket closed, got %v", proto, err)
				}
				break
			}
			if m.Type == "next" || m.Type == "data" {
				t.Fatalf("%s: anonymous subscription got %s", proto, m.Payload)
			}
		}
	}
}
