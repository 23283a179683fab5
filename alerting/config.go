package alerting

import (
	"context"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// The configuration the engine reads is kept by other packages; alerting
// names here only what it asks of them, and the wiring passes in their
// stores.

// OnCall tells who is on call for a schedule; package schedules
// implements it. It reads through idb so the engine can ask inside its
// own transaction.
type OnCall interface {
	OnCallUsers(ctx context.Context, idb bun.IDB, scheduleID int, at time.Time) ([]int, error)
}

// Policies reads escalation policies; package policies implements it.
type Policies interface {
	// PolicyByID returns the policy with its steps in order.
	PolicyByID(ctx context.Context, idb bun.IDB, id int) (*db.EscalationPolicy, error)
}

// Integrations reads integrations, their recipients and their rulesets;
// package integrations implements it.
type Integrations interface {
	// IntegrationByToken returns the integration whose webhooks use
	// token, or db.ErrNotFound.
	IntegrationByToken(ctx context.Context, token string) (*db.Integration, error)
	IntegrationByID(ctx context.Context, idb bun.IDB, id int) (*db.Integration, error)
	// RulesetByID returns the ruleset with its rules in order.
	RulesetByID(ctx context.Context, idb bun.IDB, id int) (*db.Ruleset, error)
	// RecipientsOf returns the users and groups the integration's alerts
	// are for (the RECIPIENTS target of a policy).
	RecipientsOf(ctx context.Context, idb bun.IDB, integrationID int) ([]*db.IntegrationRecipient, error)
}

// Config is the configuration alerting reads through the stores that own it.
type Config struct {
	OnCall       OnCall
	Policies     Policies
	Integrations Integrations
	// Heartbeats, when set, is asked by heartbeat monitors' deadline jobs.
	Heartbeats Heartbeats
}
