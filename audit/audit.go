package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// EntityType names the kind of thing an entry is about.
type EntityType string

const (
	Integration       EntityType = "INTEGRATION"
	Ruleset           EntityType = "RULESET"
	EscalationPolicy  EntityType = "ESCALATION_POLICY"
	Schedule          EntityType = "SCHEDULE"
	User              EntityType = "USER"
	Group             EntityType = "GROUP"
	APIKey            EntityType = "API_KEY"
	HeartbeatMonitor  EntityType = "HEARTBEAT_MONITOR"
	MaintenanceWindow EntityType = "MAINTENANCE_WINDOW"
	Workflow          EntityType = "WORKFLOW"
)

// Valid reports whether t is one of the known entity types.
func (t EntityType) Valid() bool {
	switch t {
	case Integration, Ruleset, EscalationPolicy, Schedule, User, Group, APIKey, HeartbeatMonitor, MaintenanceWindow, Workflow:
		return true
	}
	return false
}

// Action names what was done to the entity.
type Action string

const (
	Created      Action = "CREATED"
	Updated      Action = "UPDATED"
	Deleted      Action = "DELETED"
	TokenRotated Action = "TOKEN_ROTATED"
	// SignedOut ends every session of a user, by themselves or an admin.
	SignedOut       Action = "SIGNED_OUT"
	MemberAdded     Action = "MEMBER_ADDED"
	MemberRemoved   Action = "MEMBER_REMOVED"
	OverrideCreated Action = "OVERRIDE_CREATED"
	OverrideDeleted Action = "OVERRIDE_DELETED"
	// The steps of a shift swap, recorded on its schedule.
	SwapRequested Action = "SWAP_REQUESTED"
	SwapAccepted  Action = "SWAP_ACCEPTED"
	SwapDeclined  Action = "SWAP_DECLINED"
	SwapCancelled Action = "SWAP_CANCELLED"
)

// Entry is one recorded change.
type Entry struct {
	bun.BaseModel `bun:"table:audit_log"`

	ID int       `bun:"id,pk,autoincrement"`
	At time.Time `bun:"at"`
	// ActorUserID is the user who made the change, nil for the system.
	// It is not a foreign key: the record outlives the user, and Actor
	// keeps their email as it was.
	ActorUserID *int       `bun:"actor_user_id"`
	Actor       string     `bun:"actor"`
	EntityType  EntityType `bun:"entity_type"`
	EntityID    int        `bun:"entity_id"`
	Action      Action     `bun:"action"`
	// Changes is a JSON object of the changed fields, each
	// {"from": …, "to": …}, secrets redacted.
	Changes string `bun:"changes"`
}

// Actor is who a change is recorded against.
type Actor struct {
	UserID *int
	// Name is the user's email, or what acted for the system ("system",
	// "cli").
	Name string
}

// SystemName is the actor of changes made with no one in the context.
const SystemName = "system"

type actorKey struct{}

// WithActor returns a context whose changes are recorded as made by the
// user.
func WithActor(ctx context.Context, userID int, email string) context.Context {
	return context.WithValue(ctx, actorKey{}, Actor{UserID: &userID, Name: email})
}

// WithSystemActor returns a context whose changes are recorded as made
// by no user but by name, such as "cli" for the command line.
func WithSystemActor(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, actorKey{}, Actor{Name: name})
}

// ActorFrom returns who changes made with ctx are recorded against.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Name: SystemName}
}

// Record writes the entry for a change through idb, which should be the
// transaction making the change. before and after are the entity as it
// was and as it is, each marshalled to a JSON object; nil before means it
// was created, nil after that it was deleted. An update that changed no
// field writes nothing.
func Record(ctx context.Context, idb bun.IDB, at time.Time, typ EntityType, id int, action Action, before, after any) error {
	changes, err := diff(before, after)
	if err != nil {
		return fmt.Errorf("audit %s %s %d: %w", action, typ, id, err)
	}
	if len(changes) == 0 && before != nil && after != nil {
		return nil
	}
	text, err := json.Marshal(changes)
	if err != nil {
		return fmt.Errorf("audit %s %s %d: %w", action, typ, id, err)
	}
	actor := ActorFrom(ctx)
	e := &Entry{
		At: at.UTC().Truncate(time.Microsecond), ActorUserID: actor.UserID, Actor: actor.Name,
		EntityType: typ, EntityID: id, Action: action, Changes: string(text),
	}
	if _, err := idb.NewInsert().Model(e).Exec(ctx); err != nil {
		return fmt.Errorf("audit %s %s %d: %w", action, typ, id, err)
	}
	return nil
}

// change is one field's before and after; a side the entity did not
// have (it was created or deleted) is left out.
type change struct {
	from, to any
	// fromSet and toSet tell a missing side from a null one.
	fromSet, toSet bool
}

func (c change) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if c.fromSet {
		m["from"] = c.from
	}
	if c.toSet {
		m["to"] = c.to
	}
	return json.Marshal(m)
}

const (
	redacted = "[redacted]"
	replaced = "[changed]"
)

// diff returns the fields of before and after whose values differ, with
// secrets redacted.
func diff(before, after any) (map[string]change, error) {
	from, err := fields(before)
	if err != nil {
		return nil, err
	}
	to, err := fields(after)
	if err != nil {
		return nil, err
	}
	out := map[string]change{}
	for name, raw := range from {
		if other, ok := to[name]; ok && bytes.Equal(raw, other) {
			continue
		}
		c := out[name]
		if c.from, err = shown(name, raw); err != nil {
			return nil, err
		}
		c.fromSet = true
		out[name] = c
	}
	for name, raw := range to {
		if old, ok := from[name]; ok && bytes.Equal(raw, old) {
			continue
		}
		c := out[name]
		if c.to, err = shown(name, raw); err != nil {
			return nil, err
		}
		c.toSet = true
		// Both sides of a replaced secret read "[redacted]"; say it changed.
		if c.fromSet && c.from == redacted && c.to == redacted {
			c.to = replaced
		}
		out[name] = c
	}
	return out, nil
}

// fields marshals v and splits the JSON object into its fields; nil has
// none.
func fields(v any) (map[string]json.RawMessage, error) {
	if v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%T is not a JSON object: %w", v, err)
	}
	for name, value := range m {
		var compact bytes.Buffer
		if err := json.Compact(&compact, value); err != nil {
			return nil, fmt.Errorf("field %s of %T: %w", name, v, err)
		}
		m[name] = compact.Bytes()
	}
	return m, nil
}

// shown decodes a field's value for the record, hiding secrets in it.
func shown(name string, raw json.RawMessage) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode field %s: %w", name, err)
	}
	if isSecret(name) {
		return hide(v), nil
	}
	return redactWithin(v), nil
}

// hide replaces a secret's value; an empty one stays as it is, since
// "no secret" is worth seeing (a signature no longer required).
func hide(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			return ""
		}
	}
	return redacted
}

// redactWithin hides secret-looking fields nested in v.
func redactWithin(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, inner := range v {
			if isSecret(k) {
				v[k] = hide(inner)
			} else {
				v[k] = redactWithin(inner)
			}
		}
	case []any:
		for i, inner := range v {
			v[i] = redactWithin(inner)
		}
	}
	return v
}

// isSecret reports whether a field's name says it holds a secret. It
// errs on the side of hiding: a hidden field only costs a detail in the
// record, a shown secret costs the secret.
func isSecret(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	for _, word := range []string{"secret", "password", "hash", "apikey", "privatekey", "credential", "authtoken", "routingkey"} {
		if strings.Contains(n, word) {
			return true
		}
	}
	return strings.HasSuffix(n, "token") || n == "key"
}
