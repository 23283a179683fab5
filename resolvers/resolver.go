// Package resolvers implements the GraphQL schema. Resolvers stay thin:
// each checks the caller's role, converts between GraphQL and domain
// types, and calls the domain services.
package resolvers

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"

	"github.com/klaxonhq/klaxon/invalid"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/maintenance"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/workflows"
)

// Resolver is the root of every resolver; it holds the domain services.
type Resolver struct {
	Alerting      *alerting.Service
	Auth          *auth.Service
	Events        *events.Bus
	Audit         *audit.Log
	ScheduleStore *schedules.Store
	PolicyStore   *policies.Store
	// IntegrationStore keeps the integrations and their rulesets.
	IntegrationStore *integrations.Store
	ContactStore     *contacts.Store
	// HeartbeatStore keeps the heartbeat monitors.
	HeartbeatStore *heartbeats.Store
	// MaintenanceStore keeps the maintenance windows.
	MaintenanceStore *maintenance.Store
	// InboundEmailDomain is the domain of EMAIL integrations' addresses;
	// empty when mail is not received.
	InboundEmailDomain string
	// WorkflowStore keeps the lifecycle workflows.
	WorkflowStore *workflows.Store

	// owners caches the teams of integrations and heartbeat monitors for
	// subscriptions; see OwnersChanged.
	owners owners
}

// cursor is opaque to clients; it carries the id of the last item seen.
func cursor(id int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(id)))
}

func page(first *int, after *string) (db.PageRequest, error) {
	var p db.PageRequest
	if first != nil {
		p.First = *first
		if p.First <= 0 {
			return p, invalid.New("first", "must be positive")
		}
	}
	var err error
	p.After, err = parseCursor(after)
	return p, err
}

// parseCursor reads an optional "after" argument; absent is 0.
func parseCursor(after *string) (int, error) {
	if after == nil || *after == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	if err != nil {
		return 0, invalid.New("after", "is not a cursor from this API")
	}
	id, err := strconv.Atoi(string(raw))
	if err != nil || id <= 0 {
		return 0, invalid.New("after", "is not a cursor from this API")
	}
	return id, nil
}

func pageInfo(lastID int, more bool) *graph.PageInfo {
	info := &graph.PageInfo{HasNextPage: more}
	if lastID > 0 {
		c := cursor(lastID)
		info.EndCursor = &c
	}
	return info
}

func ptrValue[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

func (r *Resolver) optionalUser(ctx context.Context, id *int) (*db.User, error) {
	if id == nil {
		return nil, nil
	}
	return orNil(r.Auth.User(ctx, *id))
}

func (r *Resolver) inboundMessages(ctx context.Context, f alerting.InboundFilter, first *int, after *string) (*graph.InboundMessageConnection, error) {
	p, err := page(first, after)
	if err != nil {
		return nil, err
	}
	msgs, total, more, err := r.Alerting.InboundMessages(ctx, f, p)
	if err != nil {
		return nil, err
	}
	lastID := 0
	if len(msgs) > 0 {
		lastID = msgs[len(msgs)-1].ID
	}
	return &graph.InboundMessageConnection{Nodes: msgs, TotalCount: min(total, db.CountCap), TotalCountCapped: total > db.CountCap, PageInfo: pageInfo(lastID, more)}, nil
}

// orNil turns "not found" into a null result, as single-item queries
// answer for an id that does not exist.
func orNil[T any](v *T, err error) (*T, error) {
	if errors.Is(err, db.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func done(err error) (bool, error) { return err == nil, err }

func ruleSpecs(in []*graph.RuleInput) []rules.Rule {
	if in == nil {
		return nil
	}
	specs := make([]rules.Rule, len(in))
	for i, r := range in {
		specs[i] = rules.Rule{Name: ptrValue(r.Name), Match: ptrValue(r.Match), Action: r.Action}
		if r.Route != nil {
			specs[i].Route = rules.Route{
				EscalationPolicyID: ptrValue(r.Route.EscalationPolicyID),
				RecipientUserIDs:   r.Route.RecipientUserIds,
				RecipientGroupIDs:  r.Route.RecipientGroupIds,
				Severity:           strings.ToLower(strings.TrimSpace(ptrValue(r.Route.Severity))),
			}
		}
		specs[i].Conditions = conditionSpecs(r.Conditions)
	}
	return specs
}

func conditionSpecs(in []*graph.ConditionInput) []rules.Condition {
	var out []rules.Condition
	for _, c := range in {
		out = append(out, rules.Condition{
			Field: ptrValue(c.Field), Path: ptrValue(c.Path), Op: c.Op,
			Value: ptrValue(c.Value), Values: c.Values, CaseSensitive: ptrValue(c.CaseSensitive),
		})
	}
	return out
}

func workflowInput(in graph.WorkflowInput) workflows.Input {
	out := workflows.Input{Name: in.Name, IntegrationID: in.IntegrationID, Conditions: conditionSpecs(in.Conditions)}
	for _, e := range in.On {
		out.On = append(out.On, db.WorkflowEvent(e))
	}
	if a := in.Action; a != nil {
		out.Method, out.URL, out.Body = a.Method, a.URL, ptrValue(a.Body)
		for _, h := range a.Headers {
			out.Headers = append(out.Headers, db.WorkflowHeader{Name: h.Name, Value: h.Value})
		}
	}
	return out
}
