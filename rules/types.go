package rules

// Fields are the alert fields mapped out of one message.
type Fields struct {
	SourceID, SourceName, Subject, Severity, URL, Details string
}

// Mapping lists, for each field, JSONPath expressions tried in order; the
// first that yields a non-empty value wins.
type Mapping struct {
	SourceID   []string `json:"sourceId,omitempty"`
	SourceName []string `json:"sourceName,omitempty"`
	Subject    []string `json:"subject,omitempty"`
	Severity   []string `json:"severity,omitempty"`
	URL        []string `json:"url,omitempty"`
	Details    []string `json:"details,omitempty"`
}

// Op is a condition operator.
type Op string

// Every NOT_ operator is the exact negation of its positive counterpart.
const (
	OpEquals      Op = "EQUALS"
	OpNotEquals   Op = "NOT_EQUALS"
	OpContains    Op = "CONTAINS"
	OpNotContains Op = "NOT_CONTAINS"
	OpMatches     Op = "MATCHES" // RE2 syntax, unanchored
	OpNotMatches  Op = "NOT_MATCHES"
	OpExists      Op = "EXISTS"
	OpNotExists   Op = "NOT_EXISTS"
	OpIn          Op = "IN"
	OpNotIn       Op = "NOT_IN"
)

// MatchMode says how a rule combines its conditions.
type MatchMode string

const (
	MatchAll MatchMode = "ALL" // every condition holds; the default when empty
	MatchAny MatchMode = "ANY" // at least one condition holds
)

// Action is what a matching rule asks the caller to do with the alert.
type Action string

const (
	ActionOpen   Action = "OPEN"
	ActionClose  Action = "CLOSE"
	ActionIgnore Action = "IGNORE"
	// ActionPulse counts the message as a pulse of its integration, keyed
	// by the mapped sourceName: a sign of life (a completed scan) that the
	// integration may expect every so often. It touches no alert of its
	// own; the caller watches the pulses.
	ActionPulse Action = "PULSE"
	// ActionAcknowledge acknowledges the source's open alert on behalf of
	// the sender, as PagerDuty's "acknowledge" event does.
	ActionAcknowledge Action = "ACKNOWLEDGE"
	// ActionNote adds the message's mapped details to the source's open
	// alert's timeline as a note, as Opsgenie's "add note" request does.
	ActionNote Action = "NOTE"
)

// Condition tests one value: either a mapped field (Field) or the nodes a
// JSONPath selects from the raw body (Path); exactly one must be set.
type Condition struct {
	Field         string   `json:"field,omitempty"` // "sourceId", "sourceName", "subject", "severity", "url" or "details"
	Path          string   `json:"path,omitempty"`  // a JSONPath into the body
	Op            Op       `json:"op"`
	Value         string   `json:"value,omitempty"`
	Values        []string `json:"values,omitempty"`        // for IN / NOT_IN
	CaseSensitive bool     `json:"caseSensitive,omitempty"` // comparisons are case-insensitive by default
}

// Rule is one ordered entry of a ruleset.
type Rule struct {
	Name       string      `json:"name"`
	Match      MatchMode   `json:"match,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"` // none = matches every message
	Action     Action      `json:"action"`
	// Route, on an OPEN rule, sends the alerts it opens to other people
	// than the integration's own policy and recipients.
	Route Route `json:"route,omitzero"`
}

// Route overrides who an opened alert pages; zero fields keep the
// integration's. The ids are opaque here: the caller checks they exist.
type Route struct {
	EscalationPolicyID int   `json:"escalationPolicyId,omitempty"`
	RecipientUserIDs   []int `json:"recipientUserIds,omitempty"`
	RecipientGroupIDs  []int `json:"recipientGroupIds,omitempty"`
	// Severity, when set, is the opened alert's severity instead of the
	// mapped one (one of critical, high, medium, low, info): a rule can
	// raise regressions, say.
	Severity string `json:"severity,omitempty"`
}

// NamesRecipients reports whether the route pages people of its own.
func (r Route) NamesRecipients() bool {
	return len(r.RecipientUserIDs) > 0 || len(r.RecipientGroupIDs) > 0
}

// IsZero reports whether the route overrides nothing.
func (r Route) IsZero() bool {
	return r.EscalationPolicyID == 0 && len(r.RecipientUserIDs) == 0 && len(r.RecipientGroupIDs) == 0 && r.Severity == ""
}

// Decision is the outcome of evaluating one message.
type Decision struct {
	Fields    Fields
	Action    Action // "" when no rule matched
	RuleIndex int    // 0-based; -1 when none matched
	RuleName  string
	Route     Route  // the matched rule's route
	Detail    string // human readable, for logs and the UI
	// GroupKey is the opened alert's key within its integration's
	// grouping (see Grouper), set by the caller that groups.
	GroupKey string
	// Err is ErrTooCostly when the message could not be mapped and
	// evaluated within MaxSteps; nothing else is set then.
	Err error
}

// IntegrationType names a kind of sender that has a preset.
type IntegrationType string

const (
	TypeDetectify    IntegrationType = "DETECTIFY"
	TypeGeneric      IntegrationType = "GENERIC"
	TypeAlertmanager IntegrationType = "ALERTMANAGER"
	TypePagerDuty    IntegrationType = "PAGERDUTY"
	// TypeOpsgenie reads the requests of Opsgenie's Alert API as the
	// drop-in API stores them (see opsgeniePreset).
	TypeOpsgenie IntegrationType = "OPSGENIE"
	// TypeEmail reads mail received by the SMTP listener, in the shape
	// of EmailMessage.
	TypeEmail IntegrationType = "EMAIL"
)
