package db

import (
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/oncall"
)

// ContactType is a channel a person can be reached on.
type ContactType string

const (
	ContactEmail   ContactType = "EMAIL"
	ContactSMS     ContactType = "SMS"
	ContactVoice   ContactType = "VOICE"
	ContactPush    ContactType = "PUSH"
	ContactSlack   ContactType = "SLACK"
	ContactTeams   ContactType = "TEAMS"
	ContactNtfy    ContactType = "NTFY"
	ContactWebhook ContactType = "WEBHOOK"
	// ContactSlackApp is a Slack user or channel id that Klaxon's Slack
	// app posts to, with buttons that act.
	ContactSlackApp ContactType = "SLACK_APP"
	// ContactMattermost is a Mattermost incoming webhook URL; its posts
	// carry signed buttons.
	ContactMattermost ContactType = "MATTERMOST"
)

// ContactTypes lists every contact type.
var ContactTypes = []ContactType{ContactEmail, ContactSMS, ContactVoice, ContactPush, ContactSlack, ContactTeams, ContactNtfy, ContactWebhook, ContactSlackApp, ContactMattermost}

// Valid reports whether t is a known contact type.
func (t ContactType) Valid() bool {
	return slices.Contains(ContactTypes, t)
}

// NeedsVerification reports whether a method of this type must prove,
// with a code sent to it, that it reaches its owner before it is used: a
// mistyped number or address would page a stranger. URLs for chat, push
// and webhooks are pasted from the service that issued them and reach
// whoever configured them.
func (t ContactType) NeedsVerification() bool {
	return t == ContactEmail || t == ContactSMS || t == ContactVoice
}

type ContactMethod struct {
	bun.BaseModel `bun:"table:contact_methods"`

	ID        int         `bun:"id,pk,autoincrement"`
	UserID    int         `bun:"user_id"`
	Name      string      `bun:"name"`
	Type      ContactType `bun:"type"`
	Value     string      `bun:"value"`
	Verified  bool        `bun:"verified"`
	Disabled  bool        `bun:"disabled"`
	CreatedAt time.Time   `bun:"created_at"`
}

// ContactVerification is the code last sent to an unverified contact
// method. Only a hash of the code is kept.
type ContactVerification struct {
	bun.BaseModel `bun:"table:contact_verifications"`

	ContactMethodID int       `bun:"contact_method_id,pk"`
	CodeHash        string    `bun:"code_hash"`
	Attempts        int       `bun:"attempts"`
	SentAt          time.Time `bun:"sent_at"`
	ExpiresAt       time.Time `bun:"expires_at"`
}

// NotificationRule says: once an alert pages this user, reach them on
// ContactMethodID after DelayMinutes if it is still unacknowledged.
type NotificationRule struct {
	bun.BaseModel `bun:"table:notification_rules"`

	ID              int       `bun:"id,pk,autoincrement"`
	UserID          int       `bun:"user_id"`
	ContactMethodID int       `bun:"contact_method_id"`
	DelayMinutes    int       `bun:"delay_minutes"`
	CreatedAt       time.Time `bun:"created_at"`
}

type Schedule struct {
	bun.BaseModel `bun:"table:schedules"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID      *int                `bun:"team_id"`
	Description string              `bun:"description"`
	TimeZone    string              `bun:"time_zone"`
	CreatedAt   time.Time           `bun:"created_at"`
	UpdatedAt   time.Time           `bun:"updated_at"`
	Layers      []*ScheduleLayer    `bun:"rel:has-many,join:id=schedule_id"`
	Overrides   []*ScheduleOverride `bun:"rel:has-many,join:id=schedule_id"`
}

type ScheduleLayer struct {
	bun.BaseModel `bun:"table:schedule_layers"`

	ID             int                  `bun:"id,pk,autoincrement"`
	ScheduleID     int                  `bun:"schedule_id"`
	Position       int                  `bun:"position"`
	Name           string               `bun:"name"`
	ShiftLength    int                  `bun:"shift_length"`
	ShiftUnit      oncall.ShiftUnit     `bun:"shift_unit"`
	HandoffAt      time.Time            `bun:"handoff_at"`
	ParticipantIDs []int                `bun:"participant_ids,type:text"`
	Restrictions   []oncall.Restriction `bun:"restrictions,type:text"`
}

type ScheduleOverride struct {
	bun.BaseModel `bun:"table:schedule_overrides"`

	ID            int       `bun:"id,pk,autoincrement"`
	ScheduleID    int       `bun:"schedule_id"`
	UserID        int       `bun:"user_id"`
	ReplaceUserID *int      `bun:"replace_user_id"`
	Start         time.Time `bun:"start_at"`
	End           time.Time `bun:"end_at"`
	CreatedAt     time.Time `bun:"created_at"`
	// Alongside puts UserID on call in addition to whoever is (see
	// oncall.Override); ReplaceUserID is then nil.
	Alongside bool `bun:"alongside"`
}

// Spec is the schedule as package oncall evaluates it; Layers and
// Overrides must be loaded.
func (s *Schedule) Spec() oncall.Schedule {
	spec := oncall.Schedule{TimeZone: s.TimeZone}
	for _, l := range s.Layers {
		spec.Layers = append(spec.Layers, oncall.Layer{
			Name: l.Name, ShiftLength: l.ShiftLength, ShiftUnit: l.ShiftUnit, HandoffAt: l.HandoffAt,
			ParticipantIDs: l.ParticipantIDs, Restrictions: l.Restrictions,
		})
	}
	for _, o := range s.Overrides {
		override := oncall.Override{UserID: o.UserID, Start: o.Start, End: o.End, Alongside: o.Alongside}
		if o.ReplaceUserID != nil {
			override.ReplaceUserID = *o.ReplaceUserID
		}
		spec.Overrides = append(spec.Overrides, override)
	}
	return spec
}

// TargetType names who an escalation step reaches.
type TargetType string

const (
	TargetUser       TargetType = "USER"
	TargetGroup      TargetType = "GROUP"
	TargetSchedule   TargetType = "SCHEDULE"
	TargetRecipients TargetType = "RECIPIENTS"
)

// Target is one of a step's targets; ID is unused for RECIPIENTS.
type Target struct {
	Type TargetType `json:"type"`
	ID   int        `json:"id,omitempty"`
}

type EscalationPolicy struct {
	bun.BaseModel `bun:"table:escalation_policies"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID      *int   `bun:"team_id"`
	Description string `bun:"description"`
	// Repeat is how many more times the whole policy runs after the first.
	Repeat int `bun:"repeat"`
	// AckTimeoutMinutes returns an alert acknowledged that long ago and
	// still not closed to OPEN, paging from the first step; nil never does.
	AckTimeoutMinutes *int              `bun:"ack_timeout_minutes"`
	CreatedAt         time.Time         `bun:"created_at"`
	UpdatedAt         time.Time         `bun:"updated_at"`
	Steps             []*EscalationStep `bun:"rel:has-many,join:id=policy_id"`
}

// EscalationStep notifies its targets, then waits DelayMinutes before the
// next step.
type EscalationStep struct {
	bun.BaseModel `bun:"table:escalation_steps"`

	ID           int      `bun:"id,pk,autoincrement"`
	PolicyID     int      `bun:"policy_id"`
	Position     int      `bun:"position"`
	DelayMinutes int      `bun:"delay_minutes"`
	Targets      []Target `bun:"targets,type:text"`
}

// IntegrationRecipient is a user or group an integration's alerts are for.
type IntegrationRecipient struct {
	bun.BaseModel `bun:"table:integration_recipients"`

	IntegrationID int        `bun:"integration_id,pk"`
	Kind          TargetType `bun:"kind,pk"` // USER or GROUP
	TargetID      int        `bun:"target_id,pk"`
}

// AlertRecipient is a user or group an alert is for, when a rule routed
// it away from its integration's recipients.
type AlertRecipient struct {
	bun.BaseModel `bun:"table:alert_recipients"`

	AlertID  int        `bun:"alert_id,pk"`
	Kind     TargetType `bun:"kind,pk"` // USER or GROUP
	TargetID int        `bun:"target_id,pk"`
}

// AlertJob is a durable timer of the escalation engine.
type AlertJob struct {
	bun.BaseModel `bun:"table:alert_jobs"`

	ID   int    `bun:"id,pk,autoincrement"`
	Kind string `bun:"kind"`
	// AlertID is 0 (NULL) for a job about no alert yet, such as a
	// heartbeat monitor's deadline.
	AlertID     int        `bun:"alert_id,nullzero"`
	RunAt       time.Time  `bun:"run_at"`
	Args        string     `bun:"args"`
	DedupKey    string     `bun:"dedup_key"`
	Attempts    int        `bun:"attempts"`
	LockedBy    string     `bun:"locked_by"`
	LockedUntil *time.Time `bun:"locked_until"`
	LastError   string     `bun:"last_error"`
	CreatedAt   time.Time  `bun:"created_at"`
	// ContactMethodID is set on notify jobs, so the jobs waiting on one
	// number can be found and sent as one message.
	ContactMethodID *int `bun:"contact_method_id"`
	// HeartbeatMonitorID is set on a heartbeat monitor's deadline job,
	// which goes with the monitor.
	HeartbeatMonitorID *int `bun:"heartbeat_monitor_id"`
	// ScanHeartbeatID is set on a pulse key's deadline job, which goes
	// with the key.
	ScanHeartbeatID *int `bun:"scan_heartbeat_id"`
}

type NotificationStatus string

const (
	NotificationSending   NotificationStatus = "SENDING"
	NotificationSent      NotificationStatus = "SENT"
	NotificationDelivered NotificationStatus = "DELIVERED"
	NotificationFailed    NotificationStatus = "FAILED"
)

// Notification is one message to one person about one alert, with its
// delivery state.
type Notification struct {
	bun.BaseModel `bun:"table:notifications"`

	ID              int                `bun:"id,pk,autoincrement"`
	AlertID         int                `bun:"alert_id"`
	UserID          *int               `bun:"user_id"`
	ContactMethodID *int               `bun:"contact_method_id"`
	Channel         ContactType        `bun:"channel"`
	Destination     string             `bun:"destination"`
	Status          NotificationStatus `bun:"status"`
	Attempts        int                `bun:"attempts"`
	Error           string             `bun:"error"`
	ProviderID      string             `bun:"provider_id"`
	Step            int                `bun:"step"`
	Round           int                `bun:"round"`
	DedupKey        string             `bun:"dedup_key"`
	CreatedAt       time.Time          `bun:"created_at"`
	UpdatedAt       time.Time          `bun:"updated_at"`
}

// LinkAction is what an action link does.
type LinkAction string

const (
	LinkAcknowledge LinkAction = "ACKNOWLEDGE"
	LinkClose       LinkAction = "CLOSE"
)

// ActionLink lets the recipient of a notification act on its alert
// without signing in, once, until it expires.
type ActionLink struct {
	bun.BaseModel `bun:"table:action_links"`

	TokenHash string     `bun:"token_hash,pk"`
	AlertID   int        `bun:"alert_id"`
	UserID    int        `bun:"user_id"`
	Action    LinkAction `bun:"action"`
	ExpiresAt time.Time  `bun:"expires_at"`
	UsedAt    *time.Time `bun:"used_at"`
	CreatedAt time.Time  `bun:"created_at"`
}

// RuleToQueue is a notification rule of an enabled contact method as the
// escalation engine queues it: with the method's channel and the email of
// its owner, for the timeline.
type RuleToQueue struct {
	ContactMethodID int         `bun:"contact_method_id"`
	DelayMinutes    int         `bun:"delay_minutes"`
	Type            ContactType `bun:"type"`
	Email           string      `bun:"email"`
}
