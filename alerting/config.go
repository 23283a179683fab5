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

// Contacts reads the contact methods and notification rules the engine
// pages through; package contacts implements it.
type Contacts interface {
	// ContactMethodByID returns the method, or db.ErrNotFound.
	ContactMethodByID(ctx context.Context, idb bun.IDB, id int) (*db.ContactMethod, error)
	// LockContactMethod holds the method's row until idb's transaction
	// ends; a missing method is not an error.
	LockContactMethod(ctx context.Context, idb bun.IDB, id int) error
	// RulesToQueue returns the user's rules on enabled methods, by delay.
	RulesToQueue(ctx context.Context, idb bun.IDB, userID int) ([]db.RuleToQueue, error)
	// VerifiedOwner returns the user who verified value as an enabled
	// method of type t, or db.ErrNotFound.
	VerifiedOwner(ctx context.Context, t db.ContactType, value string) (int, error)
}

// Groups tells who is in a group; package auth, which keeps the groups,
// implements it.
type Groups interface {
	// MemberIDs returns the ids of the members of the groups, in
	// order and without repeats.
	MemberIDs(ctx context.Context, idb bun.IDB, groupIDs []int) ([]int, error)
}

// Maintenance reads the maintenance windows; package maintenance
// implements it.
type Maintenance interface {
	// WindowsFor returns the windows naming the integration. Ingest keeps
	// them with the integration's route and asks them, in memory, whether
	// one covers a message's time.
	WindowsFor(ctx context.Context, idb bun.IDB, integrationID int) ([]*db.MaintenanceWindow, error)
	// WindowByID loads one window; db.ErrNotFound once it is deleted.
	WindowByID(ctx context.Context, idb bun.IDB, id int) (*db.MaintenanceWindow, error)
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
	// IntegrationByRoutingKey returns the integration whose routing key
	// is key, or db.ErrNotFound.
	IntegrationByRoutingKey(ctx context.Context, key string) (*db.Integration, error)
}

// Config is the configuration alerting reads through the stores that own it.
type Config struct {
	OnCall       OnCall
	Policies     Policies
	Integrations Integrations
	Contacts     Contacts
	Groups       Groups
	// Heartbeats, when set, is asked by heartbeat monitors' deadline jobs.
	Heartbeats Heartbeats
	// Maintenance may be nil: no integration is ever under maintenance.
	Maintenance Maintenance
	// Workflows may be nil: no alert change sends anything.
	Workflows Workflows
}

// Workflows reads the lifecycle workflows; package workflows implements
// it. Its store's change hook is wired to Service.RoutesChanged, which
// drops the copy alerting keeps.
type Workflows interface {
	// AllWorkflows returns every workflow.
	AllWorkflows(ctx context.Context, idb bun.IDB) ([]*db.Workflow, error)
	// WorkflowByID returns one workflow, or db.ErrNotFound.
	WorkflowByID(ctx context.Context, idb bun.IDB, id int) (*db.Workflow, error)
}
