package server

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/klaxonhq/klaxon/events"
)

// An event that reaches many subscribers of the same operation would be
// executed and encoded once for each: at 10,000 subscribers that was
// most of a delivery's CPU. Subscriptions whose operation (query,
// variables, operation name) is the same, and whose selection reads
// nothing that depends on who asks, share one result per event instead:
// the first to deliver it executes and encodes, the others write the
// same bytes under their own id.
//
// Whether a subscriber gets the event at all is still decided for each
// one, by its subscription's filter (its team scope included) before the
// event reaches its channel; sharing only spares executing the selection
// again for someone already allowed to see the event.

// shareableFields are the fields that read only the event, the alert or
// the inbound message itself: struct fields, or resolvers that neither
// look at the caller nor read anything else. Any other field (a user,
// whose contact methods are redacted by who asks; an integration; the
// timeline, read from the database) keeps its subscription executing on
// its own. A field added here must be checked for the same: its resolver,
// if any, and everything it calls.
var shareableFields = map[string]map[string]bool{
	"Subscription": fieldSet("alertEvents", "inboundLog"),
	"AlertEvent":   fieldSet("cursor", "type", "at", "alert"),
	"Alert": fieldSet("id", "number", "status", "severity", "subject", "details", "url", "sourceId",
		"sourceName", "appendCount", "openedAt", "lastSeenAt", "acknowledgedAt", "closedAt",
		"snoozedUntil", "regression", "dueAt", "overdue", "overdueAt"),
	"InboundMessage": fieldSet("id", "cursor", "receivedAt", "status", "detail", "sourceId", "remoteAddr",
		"headers", "body", "bodyPrunedAt"),
	"Header": fieldSet("name", "value"),
}

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// shareKey is what subscriptions must have in common to share results,
// and whether rc may share at all.
func shareKey(rc *graphql.OperationContext) (string, bool) {
	if rc.Operation == nil || rc.Operation.Operation != ast.Subscription || rc.RawQuery == "" {
		return "", false
	}
	w := shareWalker{fragments: rc.Doc.Fragments, visiting: map[string]bool{}}
	if !w.callerFree(rc.Operation.SelectionSet) {
		return "", false
	}
	// encoding/json writes a map's keys in order, so equal variables are
	// equal bytes.
	vars, err := json.Marshal(rc.Variables)
	if err != nil {
		return "", false
	}
	var b strings.Builder
	b.Grow(len(rc.OperationName) + len(vars) + len(rc.RawQuery) + 2)
	b.WriteString(rc.OperationName)
	b.WriteByte(0)
	b.Write(vars)
	b.WriteByte(0)
	b.WriteString(rc.RawQuery)
	return b.String(), true
}

// shareWalker checks a selection against shareableFields, through its
// fragments.
type shareWalker struct {
	fragments ast.FragmentDefinitionList
	visiting  map[string]bool
}

func (w *shareWalker) callerFree(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			if !onlyConditions(sel.Directives) {
				return false
			}
			if sel.Name != "__typename" {
				if sel.ObjectDefinition == nil || !shareableFields[sel.ObjectDefinition.Name][sel.Name] {
					return false
				}
			}
			if !w.callerFree(sel.SelectionSet) {
				return false
			}
		case *ast.InlineFragment:
			if !onlyConditions(sel.Directives) || !w.callerFree(sel.SelectionSet) {
				return false
			}
		case *ast.FragmentSpread:
			def := w.fragments.ForName(sel.Name)
			if def == nil || w.visiting[sel.Name] || !onlyConditions(sel.Directives) {
				return false
			}
			w.visiting[sel.Name] = true
			ok := w.callerFree(def.SelectionSet)
			delete(w.visiting, sel.Name)
			if !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// onlyConditions reports whether directives are at most @include and
// @skip, whose arguments are the operation's own, and so the same for
// everyone sharing it.
func onlyConditions(directives ast.DirectiveList) bool {
	for _, d := range directives {
		if d.Name != "include" && d.Name != "skip" {
			return false
		}
	}
	return true
}

// resultShares holds a shareGroup for each operation that subscriptions
// share, while any of them runs.
type resultShares struct {
	mu     sync.Mutex
	groups map[string]*shareGroup
	// encodes counts the results encoded to be shared.
	encodes atomic.Int64
}

func newResultShares() *resultShares {
	return &resultShares{groups: map[string]*shareGroup{}}
}

// join returns the group for key, counting one more subscription in it.
func (r *resultShares) join(key string) *shareGroup {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.groups[key]
	if g == nil {
		g = &shareGroup{shares: r, key: key}
		r.groups[key] = g
	}
	g.members++
	return g
}

// leave counts one subscription out of g, dropping g after the last.
func (r *resultShares) leave(g *shareGroup) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g.members--
	if g.members == 0 && r.groups[g.key] == g {
		delete(r.groups, g.key)
	}
}

// sharedRecent is how many of its latest events a group keeps results
// for. Subscribers of one operation take an event at about the same
// time; one that falls further behind executes for itself.
const sharedRecent = 32

// shareGroup is the subscriptions of one operation, with the results of
// the latest events they were sent.
type shareGroup struct {
	shares  *resultShares
	key     string
	members int // guarded by shares.mu

	mu     sync.Mutex
	recent [sharedRecent]*sharedResult
	next   int
}

// sharedResult is one event's result for a group. done is closed once
// payload is set, or left nil: then each subscriber executes its own.
type sharedResult struct {
	ev      *events.Event
	done    chan struct{}
	payload []byte
}

// result finds ev's result, or makes a place for it; mine reports that
// the caller must execute and then settle it.
func (g *shareGroup) result(ev *events.Event) (res *sharedResult, mine bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Newest first: the event wanted is nearly always the latest.
	for i := 1; i <= sharedRecent; i++ {
		r := g.recent[(g.next-i+sharedRecent)%sharedRecent]
		if r == nil {
			break
		}
		if r.ev == ev {
			return r, false
		}
	}
	res = &sharedResult{ev: ev, done: make(chan struct{})}
	g.recent[g.next] = res
	g.next = (g.next + 1) % sharedRecent
	return res, true
}

// settle keeps resp's encoding for the others, unless it carries errors
// or extensions, which are left to each subscriber's own execution, and
// releases those waiting. resp is nil when executing failed.
func (g *shareGroup) settle(res *sharedResult, resp *graphql.Response) {
	defer close(res.done)
	if resp == nil || len(resp.Errors) > 0 || len(resp.Extensions) > 0 {
		return
	}
	payload, err := appendResponse(nil, resp)
	if err != nil {
		return
	}
	res.payload = payload
	g.shares.encodes.Add(1)
}
