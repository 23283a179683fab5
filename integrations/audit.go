package integrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// What the audit log keeps of each kind of configuration: the fields an
// admin sets, by their API names. Row ids of rules, steps and layers are
// left out, as replacing them with equal ones is no change. The audit
// package hides the token and the signature secret.

type integrationRecord struct {
	Name                  string                `json:"name"`
	Type                  rules.IntegrationType `json:"type"`
	Enabled               bool                  `json:"enabled"`
	Token                 string                `json:"token"`
	RulesetID             *int                  `json:"rulesetId"`
	EscalationPolicyID    *int                  `json:"escalationPolicyId"`
	Mapping               rules.Mapping         `json:"mapping"`
	SignatureSecret       string                `json:"signatureSecret"`
	RateLimitPerMinute    *int                  `json:"rateLimitPerMinute"`
	PageDelayMinutes      int                   `json:"pageDelayMinutes"`
	AutoCloseAfterMinutes *int                  `json:"autoCloseAfterMinutes"`
	RecipientUserIDs      []int                 `json:"recipientUserIds"`
	RecipientGroupIDs     []int                 `json:"recipientGroupIds"`
	Grouping              *rules.Grouping       `json:"grouping,omitempty"`
	ScanHeartbeatHours    *int                  `json:"scanHeartbeatHours,omitempty"`
	RegressionWindowDays  int                   `json:"regressionWindowDays"`
	Remediation           rules.Remediation     `json:"remediation,omitempty"`
	OverduePolicyID       *int                  `json:"overduePolicyId,omitempty"`
	RoutingKey            string                `json:"routingKey"`
	TeamID                *int                  `json:"teamId,omitempty"`
}

// recordOfIntegration reads the integration's recipients through idb,
// inside the transaction changing them.
func recordOfIntegration(ctx context.Context, idb bun.IDB, integ *db.Integration) (*integrationRecord, error) {
	var recipients []*db.IntegrationRecipient
	err := idb.NewSelect().Model(&recipients).Where("integration_id = ?", integ.ID).Order("kind", "target_id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("recipients of integration %d: %w", integ.ID, err)
	}
	r := &integrationRecord{
		Name: integ.Name, Type: integ.Type, Enabled: integ.Enabled, Token: integ.Token,
		RulesetID: integ.RulesetID, EscalationPolicyID: integ.EscalationPolicyID, Mapping: integ.Mapping,
		SignatureSecret: integ.SignatureSecret, RateLimitPerMinute: integ.RateLimitPerMinute,
		PageDelayMinutes: integ.PageDelayMinutes, AutoCloseAfterMinutes: integ.AutoCloseAfterMinutes,
		RecipientUserIDs: []int{}, RecipientGroupIDs: []int{},
		Grouping: integ.Grouping, ScanHeartbeatHours: integ.ScanHeartbeatHours,
		RegressionWindowDays: integ.RegressionWindowDays,
		Remediation:          integ.Remediation,
		OverduePolicyID:      integ.OverduePolicyID,
		RoutingKey:           integ.RoutingKey,
		TeamID:               integ.TeamID,
	}
	for _, rec := range recipients {
		switch rec.Kind {
		case db.TargetUser:
			r.RecipientUserIDs = append(r.RecipientUserIDs, rec.TargetID)
		case db.TargetGroup:
			r.RecipientGroupIDs = append(r.RecipientGroupIDs, rec.TargetID)
		}
	}
	return r, nil
}

type rulesetRecord struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Rules       []rules.Rule `json:"rules"`
	TeamID      *int         `json:"teamId,omitempty"`
}

func recordOfRuleset(rs *db.Ruleset) *rulesetRecord {
	return &rulesetRecord{Name: rs.Name, Description: rs.Description, Rules: rs.RuleSpecs(), TeamID: rs.TeamID}
}
