package integrations

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/klaxonhq/klaxon/invalid"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// IntegrationInput is what createIntegration and updateIntegration take;
// nil means "default" on create and "unchanged" on update.
type IntegrationInput struct {
	// Team is the owning team; on update, unset keeps it.
	Team      db.TeamChange
	Name      *string
	Type      *rules.IntegrationType
	Enabled   *bool
	RulesetID *int
	Mapping   *rules.Mapping
	// EscalationPolicyID pages people for the integration's alerts;
	// ClearEscalationPolicy removes it on update.
	EscalationPolicyID    *int
	ClearEscalationPolicy bool
	// RecipientUserIDs and RecipientGroupIDs are who the alerts are for
	// (the RECIPIENTS target of a policy); nil keeps them on update, an
	// empty list clears them.
	RecipientUserIDs  []int
	RecipientGroupIDs []int
	// SignatureSecret, when given, is the key webhooks must be signed
	// with; an empty one stops requiring a signature.
	SignatureSecret *string
	// RateLimitPerMinute caps the webhooks taken a minute; ClearRateLimit
	// removes the cap on update.
	RateLimitPerMinute *int
	ClearRateLimit     bool
	// Grouping gathers the alerts opened within a window; ClearGrouping
	// stops grouping on update.
	Grouping      *rules.Grouping
	ClearGrouping bool
	// PageDelayMinutes holds back the first step of each new alert.
	PageDelayMinutes *int
	// AutoCloseAfterMinutes closes an alert that has had no message for
	// that long; ClearAutoClose turns that off on update. Alerts keep the
	// setting they opened with.
	AutoCloseAfterMinutes *int
	ClearAutoClose        bool
	// ScanHeartbeatHours expects each pulse key that has pulsed to pulse
	// again within that many hours; ClearScanHeartbeat stops watching on
	// update.
	ScanHeartbeatHours *int
	ClearScanHeartbeat bool
	// RegressionWindowDays is how long after a finding's alert closed a
	// new one for it is a regression of it; 0 never links them.
	RegressionWindowDays *int
	// Remediation replaces the deadlines per severity when not nil; an
	// empty list clears them. Alerts keep the due time they got.
	Remediation *rules.Remediation
	// OverduePolicyID pages the owners of the fix for an overdue alert;
	// ClearOverduePolicy removes it on update.
	OverduePolicyID    *int
	ClearOverduePolicy bool
}

// URL is where the integration's sender posts.
func (s *Store) URL(integ *db.Integration) string {
	return s.publicURL + "/webhooks/" + integ.Token
}

func (s *Store) Integrations(ctx context.Context) ([]*db.Integration, error) {
	var list []*db.Integration
	if err := s.db.NewSelect().Model(&list).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return list, nil
}

func (s *Store) Integration(ctx context.Context, id int) (*db.Integration, error) {
	return s.IntegrationByID(ctx, s.db, id)
}

// IntegrationsByID reads the integrations of ids, in one query, keyed by
// id; ids not found are left out.
func (s *Store) IntegrationsByID(ctx context.Context, ids []int) (map[int]*db.Integration, error) {
	found := map[int]*db.Integration{}
	if len(ids) == 0 {
		return found, nil
	}
	var integs []*db.Integration
	if err := s.db.NewSelect().Model(&integs).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load integrations %v: %w", ids, db.Classify(err))
	}
	for _, integ := range integs {
		found[integ.ID] = integ
	}
	return found, nil
}

// IntegrationByID reads the integration through idb, so that alerting can
// ask inside its own transaction.
func (s *Store) IntegrationByID(ctx context.Context, idb bun.IDB, id int) (*db.Integration, error) {
	integ := new(db.Integration)
	if err := idb.NewSelect().Model(integ).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load integration %d: %w", id, db.Classify(err))
	}
	return integ, nil
}

// CreateIntegration stores a new integration with a fresh token. Without
// a mapping or a ruleset it takes its type's preset, creating a ruleset of
// its own from the preset so the admin can edit it afterwards.
func (s *Store) CreateIntegration(ctx context.Context, in IntegrationInput) (*db.Integration, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	if in.Type == nil {
		return nil, invalid.New("type", "is required")
	}
	presetMapping, presetRules, ok := rules.Preset(*in.Type)
	if !ok {
		return nil, invalid.New("type", fmt.Sprintf("unknown integration type %q", *in.Type))
	}
	now := s.clock()
	integ := &db.Integration{Type: *in.Type, Enabled: true, Mapping: presetMapping, CreatedAt: now, UpdatedAt: now,
		RegressionWindowDays: DefaultRegressionWindowDays}
	if err := applyIntegration(integ, in); err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	integ.Token = token
	if integ.RoutingKey, err = newRoutingKey(); err != nil {
		return nil, err
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := checkIntegrationRefs(ctx, tx, in); err != nil {
			return err
		}
		if in.RulesetID == nil {
			rs, err := insertRuleset(ctx, tx, now, integ.TeamID, integ.Name+" rules", "Created from the "+string(integ.Type)+" preset.", presetRules)
			if err != nil {
				return err
			}
			integ.RulesetID = &rs.ID
		}
		if err := requirePulseRule(ctx, tx, integ); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(integ).Exec(ctx); err != nil {
			return fmt.Errorf("create integration: %w", err)
		}
		if err := db.IntegrationRecipients.Replace(ctx, tx, integ.ID, in.RecipientUserIDs, in.RecipientGroupIDs); err != nil {
			return err
		}
		after, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.Integration, integ.ID, audit.Created, nil, after)
	})
	if err != nil {
		return nil, err
	}
	return integ, nil
}

func (s *Store) UpdateIntegration(ctx context.Context, id int, in IntegrationInput) (*db.Integration, error) {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	if in.Type != nil {
		return nil, invalid.New("type", "cannot be changed; create a new integration instead")
	}
	var integ *db.Integration
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if integ, err = s.IntegrationByID(ctx, tx, id); err != nil {
			return err
		}
		before, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		if err := applyIntegration(integ, in); err != nil {
			return err
		}
		if err := checkIntegrationRefs(ctx, tx, in); err != nil {
			return err
		}
		if in.ScanHeartbeatHours != nil || in.RulesetID != nil {
			if err := requirePulseRule(ctx, tx, integ); err != nil {
				return err
			}
		}
		integ.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(integ).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update integration %d: %w", id, err)
		}
		if err := db.IntegrationRecipients.Replace(ctx, tx, id, in.RecipientUserIDs, in.RecipientGroupIDs); err != nil {
			return err
		}
		if err := s.followScanHeartbeat(ctx, tx, before.ScanHeartbeatHours, integ); err != nil {
			return err
		}
		after, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, integ.UpdatedAt, audit.Integration, id, audit.Updated, before, after)
	})
	if err != nil {
		return nil, err
	}
	return integ, nil
}

// DeleteIntegration removes the integration with its alerts and inbound log.
func (s *Store) DeleteIntegration(ctx context.Context, id int) error {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		integ, err := s.IntegrationByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		before, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		if err := db.DeleteByID[db.Integration](ctx, tx, id, "integration"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.Integration, id, audit.Deleted, before, nil)
	})
}

// RotateIntegrationToken replaces the token and the routing key, the
// integration's two secrets: the old URL and key stop working at once.
// One rotation for both, as a leak of either is a reason to replace the
// credential, and a PagerDuty- or Opsgenie-speaking sender uses only the
// key.
func (s *Store) RotateIntegrationToken(ctx context.Context, id int) (*db.Integration, error) {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	routingKey, err := newRoutingKey()
	if err != nil {
		return nil, err
	}
	var integ *db.Integration
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if integ, err = s.IntegrationByID(ctx, tx, id); err != nil {
			return fmt.Errorf("rotate token: %w", err)
		}
		before, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		integ.Token, integ.RoutingKey, integ.UpdatedAt = token, routingKey, s.clock()
		_, err = tx.NewUpdate().Model(integ).Column("token", "routing_key", "updated_at").WherePK().Exec(ctx)
		if err != nil {
			return fmt.Errorf("rotate token of integration %d: %w", id, err)
		}
		after, err := recordOfIntegration(ctx, tx, integ)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, integ.UpdatedAt, audit.Integration, id, audit.TokenRotated, before, after)
	})
	if err != nil {
		return nil, err
	}
	return integ, nil
}

const (
	// minSignatureSecret keeps the key long enough that guessing it is
	// hopeless.
	minSignatureSecret    = 16
	maxRateLimitPerMinute = 1_000_000
	// maxPageDelay is a day, like an escalation step's delay.
	maxPageDelay = 1440
	// maxAutoClose is 30 days.
	maxAutoClose = 43200
	// maxScanHeartbeatHours is 30 days: scans further apart are better
	// watched by whoever schedules them.
	maxScanHeartbeatHours = 720
	// DefaultRegressionWindowDays is a quarter: a finding back after a
	// quarterly scan cycle still counts as the fix not holding.
	DefaultRegressionWindowDays = 90
	// maxRegressionWindowDays is ten years.
	maxRegressionWindowDays = 3650
)

func applyIntegration(integ *db.Integration, in IntegrationInput) error {
	in.Team.Apply(&integ.TeamID)
	if in.Name != nil {
		name, err := invalid.Name("name", *in.Name)
		if err != nil {
			return err
		}
		integ.Name = name
	}
	if in.Enabled != nil {
		integ.Enabled = *in.Enabled
	}
	if in.RulesetID != nil {
		integ.RulesetID = in.RulesetID
	}
	if in.EscalationPolicyID != nil && in.ClearEscalationPolicy {
		return invalid.New("escalationPolicyId", "cannot be both set and cleared")
	}
	if in.EscalationPolicyID != nil {
		integ.EscalationPolicyID = in.EscalationPolicyID
	}
	if in.ClearEscalationPolicy {
		integ.EscalationPolicyID = nil
	}
	if in.SignatureSecret != nil {
		secret := *in.SignatureSecret
		if secret != "" && (len(secret) < minSignatureSecret || len(secret) > 256) {
			return invalid.New("signatureSecret", fmt.Sprintf("must be %d to 256 characters, or empty to stop requiring a signature", minSignatureSecret))
		}
		integ.SignatureSecret = secret
	}
	if integ.Type == rules.TypeEmail && integ.SignatureSecret != "" {
		// Mail has no body signature to check: every mail would be refused.
		return invalid.New("signatureSecret", "an EMAIL integration takes mail, which carries no webhook signature")
	}
	if in.RateLimitPerMinute != nil && in.ClearRateLimit {
		return invalid.New("rateLimitPerMinute", "cannot be both set and cleared")
	}
	if in.RateLimitPerMinute != nil {
		if n := *in.RateLimitPerMinute; n < 1 || n > maxRateLimitPerMinute {
			return invalid.New("rateLimitPerMinute", fmt.Sprintf("must be 1 to %d, or null for no limit", maxRateLimitPerMinute))
		}
		integ.RateLimitPerMinute = in.RateLimitPerMinute
	}
	if in.ClearRateLimit {
		integ.RateLimitPerMinute = nil
	}
	if in.PageDelayMinutes != nil {
		if n := *in.PageDelayMinutes; n < 0 || n > maxPageDelay {
			return invalid.New("pageDelayMinutes", fmt.Sprintf("must be 0 to %d", maxPageDelay))
		}
		integ.PageDelayMinutes = *in.PageDelayMinutes
	}
	if in.AutoCloseAfterMinutes != nil && in.ClearAutoClose {
		return invalid.New("autoCloseAfterMinutes", "cannot be both set and cleared")
	}
	if in.AutoCloseAfterMinutes != nil {
		if n := *in.AutoCloseAfterMinutes; n < 1 || n > maxAutoClose {
			return invalid.New("autoCloseAfterMinutes", fmt.Sprintf("must be 1 to %d, or null never to close", maxAutoClose))
		}
		integ.AutoCloseAfterMinutes = in.AutoCloseAfterMinutes
	}
	if in.ClearAutoClose {
		integ.AutoCloseAfterMinutes = nil
	}
	if in.ScanHeartbeatHours != nil && in.ClearScanHeartbeat {
		return invalid.New("scanHeartbeatHours", "cannot be both set and cleared")
	}
	if in.ScanHeartbeatHours != nil {
		if n := *in.ScanHeartbeatHours; n < 1 || n > maxScanHeartbeatHours {
			return invalid.New("scanHeartbeatHours", fmt.Sprintf("must be 1 to %d, or null to watch no pulses", maxScanHeartbeatHours))
		}
		integ.ScanHeartbeatHours = in.ScanHeartbeatHours
	}
	if in.ClearScanHeartbeat {
		integ.ScanHeartbeatHours = nil
	}
	if in.RegressionWindowDays != nil {
		if n := *in.RegressionWindowDays; n < 0 || n > maxRegressionWindowDays {
			return invalid.New("regressionWindowDays", fmt.Sprintf("must be 0 (off) to %d", maxRegressionWindowDays))
		}
		integ.RegressionWindowDays = *in.RegressionWindowDays
	}
	if in.Remediation != nil {
		r := in.Remediation.Normalize()
		if err := r.Validate(); err != nil {
			return err
		}
		integ.Remediation = r
		if len(r) == 0 {
			integ.Remediation = nil
		}
	}
	if in.OverduePolicyID != nil && in.ClearOverduePolicy {
		return invalid.New("overduePolicyId", "cannot be both set and cleared")
	}
	if in.OverduePolicyID != nil {
		integ.OverduePolicyID = in.OverduePolicyID
	}
	if in.ClearOverduePolicy {
		integ.OverduePolicyID = nil
	}
	if in.Mapping != nil {
		if err := in.Mapping.Validate(); err != nil {
			return err
		}
		integ.Mapping = *in.Mapping
	}
	if in.Grouping != nil && in.ClearGrouping {
		return invalid.New("grouping", "cannot be both set and cleared")
	}
	if in.Grouping != nil {
		if err := in.Grouping.Validate(); err != nil {
			return err
		}
		g := rules.Grouping{By: make([]string, 0, len(in.Grouping.By)), WindowMinutes: in.Grouping.WindowMinutes}
		for _, by := range in.Grouping.By {
			g.By = append(g.By, strings.TrimSpace(by))
		}
		integ.Grouping = &g
	}
	if in.ClearGrouping {
		integ.Grouping = nil
	}
	return nil
}

func newToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate integration token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// checkIntegrationRefs checks that the ruleset, escalation policy and
// recipients the input names exist.
func checkIntegrationRefs(ctx context.Context, tx bun.Tx, in IntegrationInput) error {
	if in.RulesetID != nil {
		if err := rulesetExists(ctx, tx, *in.RulesetID); err != nil {
			return err
		}
	}
	if in.EscalationPolicyID != nil {
		if err := db.RequireRows(ctx, tx, (*db.EscalationPolicy)(nil), "escalationPolicyId", "escalation policy", []int{*in.EscalationPolicyID}); err != nil {
			return err
		}
	}
	if in.OverduePolicyID != nil {
		if err := db.RequireRows(ctx, tx, (*db.EscalationPolicy)(nil), "overduePolicyId", "escalation policy", []int{*in.OverduePolicyID}); err != nil {
			return err
		}
	}
	return db.IntegrationRecipients.Check(ctx, tx, in.RecipientUserIDs, in.RecipientGroupIDs)
}

// requirePulseRule refuses scanHeartbeatHours on an integration whose
// ruleset has no PULSE rule: nothing would ever pulse, so the setting
// would watch nothing while seeming to. (A Detectify integration made
// before PULSE existed keeps its older ruleset.)
func requirePulseRule(ctx context.Context, tx bun.Tx, integ *db.Integration) error {
	if integ.ScanHeartbeatHours == nil {
		return nil
	}
	var n int64
	if integ.RulesetID != nil {
		var err error
		n, err = tx.NewSelect().Model((*db.Rule)(nil)).Where("ruleset_id = ? AND action = ?", *integ.RulesetID, rules.ActionPulse).Count(ctx)
		if err != nil {
			return fmt.Errorf("count PULSE rules of ruleset %d: %w", *integ.RulesetID, err)
		}
	}
	if n == 0 {
		return invalid.New("scanHeartbeatHours", "the integration's ruleset has no PULSE rule, so nothing would pulse: add one first")
	}
	return nil
}

// IntegrationRecipients returns the users and the groups an integration's
// alerts are for, each by id; deleted ones are left out.
func (s *Store) IntegrationRecipients(ctx context.Context, integrationID int) ([]*db.User, []*db.Group, error) {
	users, groups, err := db.IntegrationRecipients.Read(ctx, s.db, integrationID)
	if err != nil {
		return nil, nil, fmt.Errorf("integration %d: %w", integrationID, err)
	}
	return users, groups, nil
}
