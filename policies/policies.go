package policies

import (
	"context"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
)

// PolicyInput is what createEscalationPolicy and updateEscalationPolicy
// take; nil means "default" on create and "unchanged" on update. Steps,
// in order, replace all steps when not nil.
type PolicyInput struct {
	// Team is the owning team; on update, unset keeps it.
	Team        db.TeamChange
	Name        *string
	Description *string
	Repeat      *int
	Steps       []StepInput
	// AckTimeoutMinutes returns an alert acknowledged that long ago and
	// still not closed to paging; ClearAckTimeout turns that off on
	// update.
	AckTimeoutMinutes *int
	ClearAckTimeout   bool
}

// StepInput is one escalation step: notify the targets, then wait
// DelayMinutes before the next step (after the last step, before the
// policy repeats).
type StepInput struct {
	DelayMinutes int
	Targets      []db.Target
}

const (
	maxRepeat       = 10
	maxStepDelay    = 1440
	maxSteps        = 20
	maxStepTargets  = 50
	maxAckTimeout   = 1440
	recipientsLabel = "Integration recipients"
)

func (s *Store) EscalationPolicies(ctx context.Context) ([]*db.EscalationPolicy, error) {
	var list []*db.EscalationPolicy
	err := s.db.NewSelect().Model(&list).
		Relation("Steps", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("list escalation policies: %w", err)
	}
	return list, nil
}

// EscalationPolicy returns the policy with its steps in order.
func (s *Store) EscalationPolicy(ctx context.Context, id int) (*db.EscalationPolicy, error) {
	return s.PolicyByID(ctx, s.db, id)
}

// PolicyByID loads the policy with its steps in order, through idb so the
// escalation engine can read it inside its own transaction.
func (s *Store) PolicyByID(ctx context.Context, idb bun.IDB, id int) (*db.EscalationPolicy, error) {
	p := new(db.EscalationPolicy)
	err := idb.NewSelect().Model(p).
		Relation("Steps", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("position") }).
		Where("escalation_policy.id = ?", id).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("load escalation policy %d: %w", id, db.Classify(err))
	}
	return p, nil
}

func (s *Store) CreateEscalationPolicy(ctx context.Context, in PolicyInput) (*db.EscalationPolicy, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	if in.Steps == nil {
		return nil, invalid.New("steps", "at least one step is required")
	}
	now := s.clock()
	p := &db.EscalationPolicy{CreatedAt: now, UpdatedAt: now}
	if err := applyPolicy(p, in); err != nil {
		return nil, err
	}
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := requireTargets(ctx, tx, in.Steps); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(p).Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("create escalation policy: %w", err)
		}
		var err error
		if p.Steps, err = insertSteps(ctx, tx, p.ID, in.Steps); err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.EscalationPolicy, p.ID, audit.Created, nil, recordOfPolicy(p))
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UpdateEscalationPolicy changes a policy; steps given replace all steps.
// Pages already in flight follow the policy as it is when each step runs.
func (s *Store) UpdateEscalationPolicy(ctx context.Context, id int, in PolicyInput) (*db.EscalationPolicy, error) {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	if err := validatePolicyFields(in); err != nil {
		return nil, err
	}
	var p *db.EscalationPolicy
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if p, err = s.PolicyByID(ctx, tx, id); err != nil {
			return err
		}
		before := recordOfPolicy(p)
		if err := applyPolicy(p, in); err != nil {
			return err
		}
		if in.Steps != nil {
			if err := requireTargets(ctx, tx, in.Steps); err != nil {
				return err
			}
		}
		p.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(p).WherePK().Exec(ctx); err != nil {
			if db.IsConstraint(err) {
				return invalid.New("name", "is already in use")
			}
			return fmt.Errorf("update escalation policy %d: %w", id, err)
		}
		if in.Steps != nil {
			if _, err := tx.NewDelete().Model((*db.EscalationStep)(nil)).Where("policy_id = ?", id).Exec(ctx); err != nil {
				return fmt.Errorf("replace steps of escalation policy %d: %w", id, err)
			}
			if p.Steps, err = insertSteps(ctx, tx, id, in.Steps); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, p.UpdatedAt, audit.EscalationPolicy, id, audit.Updated, before, recordOfPolicy(p))
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// DeleteEscalationPolicy removes a policy; integrations and alerts that
// used it are left without one.
func (s *Store) DeleteEscalationPolicy(ctx context.Context, id int) error {
	// Webhooks must follow the change from the next message on.
	defer s.onChange()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		p, err := s.PolicyByID(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		if err := db.DeleteByID[db.EscalationPolicy](ctx, tx, id, "escalation policy"); err != nil {
			return err
		}
		return audit.Record(ctx, tx, s.clock(), audit.EscalationPolicy, id, audit.Deleted, recordOfPolicy(p), nil)
	})
}

func applyPolicy(p *db.EscalationPolicy, in PolicyInput) error {
	if err := validatePolicyFields(in); err != nil {
		return err
	}
	in.Team.Apply(&p.TeamID)
	if in.Name != nil {
		p.Name = strings.TrimSpace(*in.Name)
	}
	if in.Description != nil {
		p.Description = *in.Description
	}
	if in.Repeat != nil {
		p.Repeat = *in.Repeat
	}
	if in.AckTimeoutMinutes != nil {
		p.AckTimeoutMinutes = in.AckTimeoutMinutes
	}
	if in.ClearAckTimeout {
		p.AckTimeoutMinutes = nil
	}
	return nil
}

// validatePolicyFields checks everything in the input that needs no
// database.
func validatePolicyFields(in PolicyInput) error {
	if in.Name != nil {
		if _, err := invalid.Name("name", *in.Name); err != nil {
			return err
		}
	}
	if in.Description != nil {
		if err := invalid.Description("description", *in.Description); err != nil {
			return err
		}
	}
	if in.Repeat != nil && (*in.Repeat < 0 || *in.Repeat > maxRepeat) {
		return invalid.New("repeat", fmt.Sprintf("must be between 0 and %d", maxRepeat))
	}
	if in.AckTimeoutMinutes != nil && in.ClearAckTimeout {
		return invalid.New("ackTimeoutMinutes", "cannot be both set and cleared")
	}
	if in.AckTimeoutMinutes != nil && (*in.AckTimeoutMinutes < 1 || *in.AckTimeoutMinutes > maxAckTimeout) {
		return invalid.New("ackTimeoutMinutes", fmt.Sprintf("must be 1 to %d, or null for no timeout", maxAckTimeout))
	}
	if in.Steps == nil {
		return nil
	}
	if len(in.Steps) == 0 {
		return invalid.New("steps", "at least one step is required")
	}
	if len(in.Steps) > maxSteps {
		return invalid.New("steps", fmt.Sprintf("must be at most %d", maxSteps))
	}
	for i, step := range in.Steps {
		at := fmt.Sprintf("steps[%d]", i)
		if step.DelayMinutes < 0 || step.DelayMinutes > maxStepDelay {
			return invalid.New(at+".delayMinutes", fmt.Sprintf("must be between 0 and %d", maxStepDelay))
		}
		if len(step.Targets) == 0 {
			return invalid.New(at+".targets", "at least one target is required")
		}
		if len(step.Targets) > maxStepTargets {
			return invalid.New(at+".targets", fmt.Sprintf("must be at most %d", maxStepTargets))
		}
		for j, t := range step.Targets {
			tat := fmt.Sprintf("%s.targets[%d]", at, j)
			switch t.Type {
			case db.TargetUser, db.TargetGroup, db.TargetSchedule:
				if t.ID <= 0 {
					return invalid.New(tat+".id", "is required for a "+string(t.Type)+" target")
				}
			case db.TargetRecipients:
				if t.ID != 0 {
					return invalid.New(tat+".id", "must be empty for a RECIPIENTS target")
				}
			default:
				return invalid.New(tat+".type", fmt.Sprintf("unknown target type %q (want USER, GROUP, SCHEDULE or RECIPIENTS)", t.Type))
			}
			if slices.Contains(step.Targets[:j], t) {
				return invalid.New(tat, "repeats an earlier target of the step")
			}
		}
	}
	return nil
}

// requireTargets checks that every user, group and schedule targeted exists.
func requireTargets(ctx context.Context, idb bun.IDB, steps []StepInput) error {
	for i, step := range steps {
		for j, t := range step.Targets {
			field := fmt.Sprintf("steps[%d].targets[%d].id", i, j)
			var err error
			switch t.Type {
			case db.TargetUser:
				err = db.RequireRows(ctx, idb, (*db.User)(nil), field, "user", []int{t.ID})
			case db.TargetGroup:
				err = db.RequireRows(ctx, idb, (*db.Group)(nil), field, "group", []int{t.ID})
			case db.TargetSchedule:
				err = db.RequireRows(ctx, idb, (*db.Schedule)(nil), field, "schedule", []int{t.ID})
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func insertSteps(ctx context.Context, tx bun.Tx, policyID int, steps []StepInput) ([]*db.EscalationStep, error) {
	stored := make([]*db.EscalationStep, len(steps))
	for i, step := range steps {
		stored[i] = &db.EscalationStep{PolicyID: policyID, Position: i, DelayMinutes: step.DelayMinutes, Targets: slices.Clone(step.Targets)}
	}
	if _, err := tx.NewInsert().Model(&stored).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store steps of escalation policy %d: %w", policyID, err)
	}
	return stored, nil
}

// TargetInfo is an escalation target with a name for people to read.
// Exists is false when the user, group or schedule has been deleted.
type TargetInfo struct {
	db.Target
	Name   string
	Exists bool
}

// DescribeTargets names each target, in order.
func (s *Store) DescribeTargets(ctx context.Context, targets []db.Target) ([]TargetInfo, error) {
	ids := map[db.TargetType][]int{}
	for _, t := range targets {
		ids[t.Type] = append(ids[t.Type], t.ID)
	}
	names := map[db.Target]string{}
	load := func(typ db.TargetType, model any, column string) error {
		if len(ids[typ]) == 0 {
			return nil
		}
		var rows []struct {
			ID    int    `bun:"id"`
			Name  string `bun:"name"`
			Email string `bun:"email"`
		}
		cols := []string{"id", "name"}
		if column != "" {
			cols = append(cols, column)
		}
		err := s.db.NewSelect().Model(model).Column(cols...).Where("id IN (?)", bun.In(ids[typ])).Scan(ctx, &rows)
		if err != nil {
			return fmt.Errorf("describe %s targets: %w", typ, err)
		}
		for _, r := range rows {
			name := r.Name
			if name == "" {
				name = r.Email
			}
			names[db.Target{Type: typ, ID: r.ID}] = name
		}
		return nil
	}
	if err := load(db.TargetUser, (*db.User)(nil), "email"); err != nil {
		return nil, err
	}
	if err := load(db.TargetGroup, (*db.Group)(nil), ""); err != nil {
		return nil, err
	}
	if err := load(db.TargetSchedule, (*db.Schedule)(nil), ""); err != nil {
		return nil, err
	}
	out := make([]TargetInfo, len(targets))
	for i, t := range targets {
		out[i] = TargetInfo{Target: t}
		if t.Type == db.TargetRecipients {
			out[i].Name, out[i].Exists = recipientsLabel, true
			continue
		}
		out[i].Name, out[i].Exists = names[t]
		if !out[i].Exists {
			out[i].Name = fmt.Sprintf("deleted %s %d", strings.ToLower(string(t.Type)), t.ID)
		}
	}
	return out, nil
}
