package db

import (
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/rules"
)

// Role is what a user may do; each role includes the ones below it.
type Role string

const (
	RoleAdmin     Role = "ADMIN"
	RoleResponder Role = "RESPONDER"
	RoleViewer    Role = "VIEWER"
	// RoleMember reads the directory and organisation-wide things, and
	// reads, acts on and configures only what their team roles allow.
	RoleMember Role = "MEMBER"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	return r.rank() > 0
}

// Includes reports whether r grants everything that other grants.
func (r Role) Includes(other Role) bool {
	return r.rank() >= other.rank() && other.rank() > 0
}

func (r Role) rank() int {
	switch r {
	case RoleAdmin:
		return 4
	case RoleResponder:
		return 3
	case RoleViewer:
		return 2
	case RoleMember:
		return 1
	}
	return 0
}

type User struct {
	bun.BaseModel `bun:"table:users"`

	ID           int    `bun:"id,pk,autoincrement"`
	Email        string `bun:"email"`
	Name         string `bun:"name"`
	Role         Role   `bun:"role"`
	PasswordHash string `bun:"password_hash"`
	// TokenVersion is carried by every session token; a token with an
	// older one is no longer accepted.
	TokenVersion int `bun:"token_version"`
	// SessionNonce is random, set by the database when the user is made
	// and never changed; every session token carries it, so a token names
	// this user and no other, even one given the same id.
	SessionNonce string    `bun:"session_nonce,nullzero,notnull"`
	CreatedAt    time.Time `bun:"created_at"`
	UpdatedAt    time.Time `bun:"updated_at"`
	// TeamRoleCap, set only on a caller authenticated with a restricted
	// API key (made with less than its owner's role), is the highest team
	// role the call may use, as Role is then the key's. Never stored.
	TeamRoleCap TeamRole `bun:"-"`
}

// APIKey lets a machine client call the API as its owner, with at most
// Role.
type APIKey struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID     int    `bun:"id,pk,autoincrement"`
	Name   string `bun:"name"`
	UserID int    `bun:"user_id"`
	Role   Role   `bun:"role"`
	// KeyHash is the SHA-256 of the key; the key itself is shown once.
	KeyHash string `bun:"key_hash"`
	// Prefix is the key's first characters, to tell keys apart.
	Prefix     string     `bun:"prefix"`
	CreatedAt  time.Time  `bun:"created_at"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	LastUsedAt *time.Time `bun:"last_used_at"`
}

type Group struct {
	bun.BaseModel `bun:"table:user_groups"`

	ID          int       `bun:"id,pk,autoincrement"`
	Name        string    `bun:"name"`
	Description string    `bun:"description"`
	CreatedAt   time.Time `bun:"created_at"`
}

type GroupMember struct {
	bun.BaseModel `bun:"table:group_members"`

	GroupID int      `bun:"group_id,pk"`
	UserID  int      `bun:"user_id,pk"`
	Role    TeamRole `bun:"role"`
}

// TeamRole is what a member may do with the things their team owns; each
// role includes the ones below it.
type TeamRole string

const (
	TeamManager   TeamRole = "MANAGER"
	TeamResponder TeamRole = "RESPONDER"
	TeamObserver  TeamRole = "OBSERVER"
)

// Valid reports whether r is one of the known team roles.
func (r TeamRole) Valid() bool {
	return r.rank() > 0
}

// Includes reports whether r grants everything that other grants.
func (r TeamRole) Includes(other TeamRole) bool {
	return r.rank() >= other.rank() && other.rank() > 0
}

func (r TeamRole) rank() int {
	switch r {
	case TeamManager:
		return 3
	case TeamResponder:
		return 2
	case TeamObserver:
		return 1
	}
	return 0
}

type Ruleset struct {
	bun.BaseModel `bun:"table:rulesets"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID      *int      `bun:"team_id"`
	Description string    `bun:"description"`
	CreatedAt   time.Time `bun:"created_at"`
	UpdatedAt   time.Time `bun:"updated_at"`
	Rules       []*Rule   `bun:"rel:has-many,join:id=ruleset_id"`
}

// Rule is one stored rule of a ruleset; Position orders them from 0.
type Rule struct {
	bun.BaseModel `bun:"table:rules"`

	ID         int               `bun:"id,pk,autoincrement"`
	RulesetID  int               `bun:"ruleset_id"`
	Position   int               `bun:"position"`
	Name       string            `bun:"name"`
	MatchMode  rules.MatchMode   `bun:"match_mode"`
	Conditions []rules.Condition `bun:"conditions,type:text"`
	Action     rules.Action      `bun:"action"`
	Route      rules.Route       `bun:"route,type:text"`
}

// Spec is the rule as the rules package evaluates it.
func (r *Rule) Spec() rules.Rule {
	return rules.Rule{Name: r.Name, Match: r.MatchMode, Conditions: r.Conditions, Action: r.Action, Route: r.Route}
}

// RuleSpecs returns the ruleset's rules in order, ready to compile.
func (rs *Ruleset) RuleSpecs() []rules.Rule {
	specs := make([]rules.Rule, len(rs.Rules))
	for i, r := range rs.Rules {
		specs[i] = r.Spec()
	}
	return specs
}

type Integration struct {
	bun.BaseModel `bun:"table:integrations"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID    *int                  `bun:"team_id"`
	Type      rules.IntegrationType `bun:"type"`
	Token     string                `bun:"token"`
	Enabled   bool                  `bun:"enabled"`
	RulesetID *int                  `bun:"ruleset_id"`
	// EscalationPolicyID pages people for this integration's alerts.
	EscalationPolicyID *int          `bun:"escalation_policy_id"`
	Mapping            rules.Mapping `bun:"mapping,type:text"`
	// SignatureSecret, when set, is the HMAC-SHA256 key every webhook
	// must be signed with.
	SignatureSecret string `bun:"signature_secret"`
	// RateLimitPerMinute caps the webhooks taken a minute; nil takes all.
	RateLimitPerMinute *int `bun:"rate_limit_per_minute"`
	// PageDelayMinutes holds back the first escalation step of each new
	// alert, so a blip that closes within it pages no one.
	PageDelayMinutes int `bun:"page_delay_minutes"`
	// AutoCloseAfterMinutes closes an alert that has had no message for
	// that long; nil never does.
	AutoCloseAfterMinutes *int      `bun:"auto_close_after_minutes"`
	CreatedAt             time.Time `bun:"created_at"`
	UpdatedAt             time.Time `bun:"updated_at"`

	// Grouping gathers the alerts opened within a window under the first;
	// nil groups nothing.
	Grouping *rules.Grouping `bun:"grouping,type:text"`

	// ScanHeartbeatHours, when set, expects every pulse key that has
	// pulsed (a PULSE rule's match, keyed by sourceName) to pulse again
	// within that many hours; nil watches nothing.
	ScanHeartbeatHours *int `bun:"scan_heartbeat_hours"`
	// RegressionWindowDays is how long after a source's alert closed a new
	// one for it is a regression of it; 0 never links them.
	RegressionWindowDays int `bun:"regression_window_days"`
	// Remediation is how many days a finding of each severity may stay
	// unfixed; OverduePolicyID pages the owners of the fix for an alert
	// still unclosed then.
	Remediation     rules.Remediation `bun:"remediation,type:text"`
	OverduePolicyID *int              `bun:"overdue_policy_id"`
	// RoutingKey is the integration's second secret: what senders speaking
	// PagerDuty's Events API or Opsgenie's Alert API present instead of a
	// URL (32 hex characters, PagerDuty's shape). Empty is no key.
	RoutingKey string `bun:"routing_key"`
}

// SignatureRequired says whether webhooks without a valid signature are
// refused.
func (i *Integration) SignatureRequired() bool { return i.SignatureSecret != "" }

type AlertStatus string

const (
	AlertOpen         AlertStatus = "OPEN"
	AlertAcknowledged AlertStatus = "ACKNOWLEDGED"
	AlertClosed       AlertStatus = "CLOSED"
)

type Alert struct {
	bun.BaseModel `bun:"table:alerts"`

	ID int `bun:"id,pk,autoincrement"`
	// IntegrationID is the integration whose message opened the alert;
	// nil for an alert opened by hand (see CreatedBy).
	IntegrationID *int `bun:"integration_id"`
	// Integration, when set, is IntegrationID's integration, read once
	// for a whole page of alerts rather than once for each.
	Integration    *Integration `bun:"-"`
	SourceID       string       `bun:"source_id"`
	SourceName     string       `bun:"source_name"`
	Subject        string       `bun:"subject"`
	Severity       string       `bun:"severity"`
	URL            string       `bun:"url"`
	Details        string       `bun:"details"`
	Status         AlertStatus  `bun:"status"`
	AppendCount    int          `bun:"append_count"`
	OpenedAt       time.Time    `bun:"opened_at"`
	LastSeenAt     time.Time    `bun:"last_seen_at"`
	AcknowledgedAt *time.Time   `bun:"acknowledged_at"`
	AcknowledgedBy *int         `bun:"acknowledged_by"`
	AssignedTo     *int         `bun:"assigned_to"`
	ClosedAt       *time.Time   `bun:"closed_at"`
	ClosedBy       *int         `bun:"closed_by"`
	// EscalationPolicyID is the policy paging for this alert, fixed when it
	// opens so later edits of the integration do not change a page in flight.
	EscalationPolicyID *int `bun:"escalation_policy_id"`
	// SuppressedBy is the maintenance window the alert opened during,
	// which held back its paging; cleared when the window ends and the
	// alert starts paging.
	SuppressedBy *int `bun:"suppressed_by"`
	// CreatedBy is the user who opened the alert by hand.
	CreatedBy *int `bun:"created_by"`
	// SnoozedUntil is when a snoozed (acknowledged) alert opens again.
	SnoozedUntil *time.Time `bun:"snoozed_until"`
	// HeartbeatMonitorID is the heartbeat monitor whose missed pulse
	// opened the alert.
	HeartbeatMonitorID *int `bun:"heartbeat_monitor_id"`
	// GroupID is the first alert of the alert's group (its own id when it
	// leads one); nil when its integration does not group.
	GroupID *int `bun:"group_id"`
	// PreviousAlertID is the source's earlier alert this one is a
	// regression of: closed within the integration's regression window
	// when this one opened.
	PreviousAlertID *int `bun:"previous_alert_id"`
	// DueAt is when the finding must be fixed by, from its integration's
	// remediation deadline for its severity; OverdueAt is when it was
	// found still unclosed then.
	DueAt     *time.Time `bun:"due_at"`
	OverdueAt *time.Time `bun:"overdue_at"`
}

// MissedHeartbeat is the alert a heartbeat monitor's missed deadline
// opens: package heartbeats decides it, alerting opens it and pages. It
// lives here because neither of the two may import the other.
type MissedHeartbeat struct {
	// Alert is the alert to store: subject, severity, source, details,
	// escalation policy and heartbeat monitor set.
	Alert *Alert
	// UserIDs and GroupIDs are who it is for: the RECIPIENTS of its
	// policy, or without one, paged at once.
	UserIDs  []int
	GroupIDs []int
	// Timeline is the first entry of its timeline: why it opened.
	Timeline string
}

// GroupMember says that the alert joined another alert's group and so
// does not page on its own.
func (a *Alert) GroupMember() bool { return a.GroupID != nil && *a.GroupID != a.ID }

// Regression says the alert brings back an earlier one of its source.
func (a *Alert) Regression() bool { return a.PreviousAlertID != nil }

// Overdue says the alert was still unclosed at its due time; it stays so
// once closed, as a record that the fix came late.
func (a *Alert) Overdue() bool { return a.OverdueAt != nil }

// Number is the alert's human-facing number, which is its row id: ids are
// already unique, increasing and never reused.
func (a *Alert) Number() int { return a.ID }

// AlertLogType names an entry on an alert's timeline.
type AlertLogType string

const (
	LogOpened       AlertLogType = "OPENED"
	LogAppended     AlertLogType = "APPENDED"
	LogAcknowledged AlertLogType = "ACKNOWLEDGED"
	LogAssigned     AlertLogType = "ASSIGNED"
	LogClosed       AlertLogType = "CLOSED"
	LogEscalated    AlertLogType = "ESCALATED"
	LogNotification AlertLogType = "NOTIFICATION"
	LogNoOneOnCall  AlertLogType = "NO_ONE_ON_CALL"
	LogPolicyDone   AlertLogType = "POLICY_FINISHED"
	// LogPagingDelayed says an alert's first step waits for the
	// integration's paging delay.
	LogPagingDelayed AlertLogType = "PAGING_DELAYED"
	// LogNotPaged says an alert closed while its first step was still
	// held back by the paging delay: nobody was paged.
	LogNotPaged AlertLogType = "CLOSED_BEFORE_PAGING"
	// LogAckTimedOut says an acknowledgement ran out and the alert is
	// open and paging again.
	LogAckTimedOut AlertLogType = "ACK_TIMED_OUT"
	// LogMaintenanceEnded is the end of the maintenance window an alert
	// opened during, when its paging starts (or, when the window says so,
	// does not).
	LogMaintenanceEnded AlertLogType = "MAINTENANCE_ENDED"
	// LogSnoozed: acknowledged for a while; LogSnoozeEnded: the while is
	// over and the alert is open again.
	LogSnoozed     AlertLogType = "SNOOZED"
	LogSnoozeEnded AlertLogType = "SNOOZE_ENDED"
	// LogNote is a note a person wrote on the alert.
	LogNote AlertLogType = "NOTE"
	// LogGrouped notes on a group's first alert that another joined it.
	LogGrouped AlertLogType = "GROUPED"
	// LogRegression says the alert brings back a finding whose earlier
	// alert was closed.
	LogRegression AlertLogType = "REGRESSION"
	// LogOverdue says the alert was still not closed at its due time.
	LogOverdue AlertLogType = "OVERDUE"
)

type AlertLog struct {
	bun.BaseModel `bun:"table:alert_log"`

	ID               int          `bun:"id,pk,autoincrement"`
	AlertID          int          `bun:"alert_id"`
	At               time.Time    `bun:"at"`
	Type             AlertLogType `bun:"type"`
	Message          string       `bun:"message"`
	UserID           *int         `bun:"user_id"`
	InboundMessageID *int         `bun:"inbound_message_id"`
}

type InboundStatus string

const (
	InboundPending       InboundStatus = "PENDING"
	InboundOpened        InboundStatus = "MAPPED_OPENED"
	InboundAppended      InboundStatus = "MAPPED_APPENDED"
	InboundClosed        InboundStatus = "MAPPED_CLOSED"
	InboundIgnored       InboundStatus = "MAPPED_IGNORED"
	InboundFiltered      InboundStatus = "FILTERED"
	InboundMappingFailed InboundStatus = "MAPPING_FAILED"
	// InboundRefused is a message kept only for the record: its signature
	// was missing or wrong, so nothing in it was acted on.
	InboundRefused InboundStatus = "REFUSED"
	// InboundPulse is a message a PULSE rule matched: counted as a pulse
	// of its integration's key (see ScanHeartbeat).
	InboundPulse InboundStatus = "PULSE"
	// InboundAcknowledged acknowledged the source's open alert, on behalf
	// of the sender.
	InboundAcknowledged InboundStatus = "MAPPED_ACKNOWLEDGED"
	// InboundChange is a change event (a deploy, a config push): kept in
	// the log for context, never acted on.
	InboundChange InboundStatus = "CHANGE"
	// InboundNoteAdded added a note to the source's open alert.
	InboundNoteAdded InboundStatus = "MAPPED_NOTE_ADDED"
)

// ScanHeartbeatStatus is where a pulse key stands.
type ScanHeartbeatStatus string

const (
	// ScanHeartbeatUp: the key's last pulse is within the integration's
	// scanHeartbeatHours, or nobody watches it.
	ScanHeartbeatUp ScanHeartbeatStatus = "UP"
	// ScanHeartbeatDown: no pulse came in time; its alert opened.
	ScanHeartbeatDown ScanHeartbeatStatus = "DOWN"
)

// ScanHeartbeat is one pulse key of an integration: its pulses counted,
// not stored one each (the inbound log keeps the messages).
type ScanHeartbeat struct {
	bun.BaseModel `bun:"table:scan_heartbeats"`

	ID            int                 `bun:"id,pk,autoincrement"`
	IntegrationID int                 `bun:"integration_id"`
	Key           string              `bun:"pulse_key"`
	Status        ScanHeartbeatStatus `bun:"status"`
	PulseCount    int                 `bun:"pulse_count"`
	LastPulseAt   time.Time           `bun:"last_pulse_at"`
	// AlertID is the alert the key's missed pulse opened, until its next
	// pulse.
	AlertID *int `bun:"alert_id"`
}

type InboundMessage struct {
	bun.BaseModel `bun:"table:inbound_messages"`

	ID            int               `bun:"id,pk,autoincrement"`
	IntegrationID int               `bun:"integration_id"`
	ReceivedAt    time.Time         `bun:"received_at"`
	RemoteAddr    string            `bun:"remote_addr"`
	Headers       map[string]string `bun:"headers,type:text"`
	Body          []byte            `bun:"body"`
	Status        InboundStatus     `bun:"status"`
	Detail        string            `bun:"detail"`
	SourceID      string            `bun:"source_id"`
	AlertID       *int              `bun:"alert_id"`
	// BodyPrunedAt is when retention removed the body (Body is then
	// empty); nil while the body is kept.
	BodyPrunedAt *time.Time `bun:"body_pruned_at"`

	// Cursor and StreamErr are set only on copies handed to a live
	// subscriber: where to resume after this message, and, on a stream's
	// last value, why the stream ended.
	Cursor    string `bun:"-"`
	StreamErr error  `bun:"-"`
}

type Secret struct {
	bun.BaseModel `bun:"table:secrets"`

	Name      string    `bun:"name,pk"`
	Value     string    `bun:"value"`
	CreatedAt time.Time `bun:"created_at"`
}

// WorkflowEvent names a change of an alert a workflow can follow.
type WorkflowEvent string

const (
	WorkflowOpened       WorkflowEvent = "OPENED"
	WorkflowAcknowledged WorkflowEvent = "ACKNOWLEDGED"
	WorkflowEscalated    WorkflowEvent = "ESCALATED"
	WorkflowClosed       WorkflowEvent = "CLOSED"
	WorkflowNoteAdded    WorkflowEvent = "NOTE_ADDED"
)

// WorkflowHeader is one header of a workflow's request; Value is a
// template.
type WorkflowHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Workflow is an HTTP request sent when an alert changes.
type Workflow struct {
	bun.BaseModel `bun:"table:workflows"`

	ID int `bun:"id,pk,autoincrement"`
	// Name is unique.
	Name string `bun:"name"`
	// IntegrationID nil: the workflow follows every alert.
	IntegrationID *int `bun:"integration_id"`
	// On is stored comma-separated (see OnEvents).
	On         string            `bun:"on_events"`
	Conditions []rules.Condition `bun:"conditions,type:text"`
	Method     string            `bun:"method"`
	URL        string            `bun:"url"`
	Headers    []WorkflowHeader  `bun:"headers,type:text"`
	Body       string            `bun:"body"`
	CreatedAt  time.Time         `bun:"created_at"`
	UpdatedAt  time.Time         `bun:"updated_at"`
}

// OnEvents returns the changes the workflow follows.
func (w *Workflow) OnEvents() []WorkflowEvent {
	var out []WorkflowEvent
	for e := range strings.SplitSeq(w.On, ",") {
		if e != "" {
			out = append(out, WorkflowEvent(e))
		}
	}
	return out
}

// Follows says whether the workflow follows e.
func (w *Workflow) Follows(e WorkflowEvent) bool {
	return slices.Contains(w.OnEvents(), e)
}

// LogWorkflow is an attempt of a workflow's request on the timeline.
const LogWorkflow AlertLogType = "WORKFLOW"
