package resolvers

import (
	"context"
	"errors"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/heartbeats"
	"github.com/klaxonhq/klaxon/invalid"
)

// The rights of a caller are computed by auth.Access; the helpers here
// only find the owner of what a call touches and ask it.

// team resolves an owner id to its group; nil is organisation-wide.
func (r *Resolver) team(ctx context.Context, teamID *int) (*db.Group, error) {
	if teamID == nil {
		return nil, nil
	}
	return orNil(r.Auth.Group(ctx, *teamID))
}

// requireTeam refuses an owner that names no existing team.
func (r *Resolver) requireTeam(ctx context.Context, teamID *int) error {
	if teamID == nil {
		return nil
	}
	if _, err := r.Auth.Group(ctx, *teamID); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return invalid.New("input.teamId", fmt.Sprintf("team %d does not exist", *teamID))
		}
		return err
	}
	return nil
}

// ownerOnCreate checks that the caller configures the team a new thing
// is to belong to, and returns the owner to store.
func (r *Resolver) ownerOnCreate(ctx context.Context, teamID *int) (db.TeamChange, error) {
	if _, err := r.Auth.Access(ctx); err != nil {
		return db.TeamChange{}, err
	}
	if err := r.Auth.MayConfigure(ctx, teamID); err != nil {
		return db.TeamChange{}, err
	}
	if err := r.requireTeam(ctx, teamID); err != nil {
		return db.TeamChange{}, err
	}
	return db.TeamChange{Set: true, TeamID: teamID}, nil
}

// ownerOnUpdate checks that the caller configures the thing as it is
// owned now (current is its owner, or the error loading it) and, when the
// input moves it, the team it moves to. It returns the change to store
// and the owner the thing will have.
func (r *Resolver) ownerOnUpdate(ctx context.Context, current *int, loadErr error, change graphql.Omittable[*int]) (db.TeamChange, *int, error) {
	if err := r.mayConfigureLoaded(ctx, current, loadErr); err != nil {
		return db.TeamChange{}, nil, err
	}
	to, set := change.ValueOK()
	if !set {
		return db.TeamChange{}, current, nil
	}
	if err := r.Auth.MayMove(ctx, current, to); err != nil {
		return db.TeamChange{}, nil, err
	}
	if err := r.requireTeam(ctx, to); err != nil {
		return db.TeamChange{}, nil, err
	}
	return db.TeamChange{Set: true, TeamID: to}, to, nil
}

// mayConfigureLoaded asks for the right to configure a thing that was
// loaded to find its owner. A thing that does not exist is for the store
// to report, so a signed-in caller learns "not found" as before; a caller
// who may configure nothing at all learns only that they may not.
func (r *Resolver) mayConfigureLoaded(ctx context.Context, owner *int, loadErr error) error {
	if loadErr != nil {
		if !errors.Is(loadErr, db.ErrNotFound) {
			return loadErr
		}
		return r.mayConfigureSomething(ctx)
	}
	return r.Auth.MayConfigure(ctx, owner)
}

// mayActLoaded is mayConfigureLoaded for acting on alerts.
func (r *Resolver) mayActLoaded(ctx context.Context, owner *int, loadErr error) error {
	if loadErr != nil {
		if !errors.Is(loadErr, db.ErrNotFound) {
			return loadErr
		}
		a, err := r.Auth.Access(ctx)
		if err != nil {
			return err
		}
		if a.User.Role.Includes(db.RoleResponder) || len(a.TeamIDs()) > 0 {
			return nil
		}
		return auth.ErrForbidden
	}
	return r.Auth.MayAct(ctx, owner)
}

// mayConfigureSomething refuses a caller who configures nothing: neither
// an admin nor a manager of any team.
func (r *Resolver) mayConfigureSomething(ctx context.Context) error {
	a, err := r.Auth.Access(ctx)
	if err != nil {
		return err
	}
	if a.User.Role == db.RoleAdmin {
		return nil
	}
	for _, id := range a.TeamIDs() {
		if a.TeamRole(id) == db.TeamManager {
			return nil
		}
	}
	return auth.ErrForbidden
}

// readable keeps the things of a list the caller may read, narrowed to
// teamID when given.
func readable[T any](ctx context.Context, r *Resolver, items []*T, teamID *int, owner func(*T) *int) ([]*T, error) {
	a, err := r.Auth.Access(ctx)
	if err != nil {
		return nil, err
	}
	var asked []int
	if teamID != nil {
		asked = []int{*teamID}
	}
	scope := a.ReadScope(asked)
	out := make([]*T, 0, len(items))
	for _, it := range items {
		if scope.Includes(owner(it)) {
			out = append(out, it)
		}
	}
	return out, nil
}

// visible answers a single read: the thing when the caller may read it,
// null when it does not exist or they may not, so that nobody learns what
// another team has.
func visible[T any](ctx context.Context, r *Resolver, item *T, err error, owner func(*T) *int) (*T, error) {
	if _, aerr := r.Auth.Access(ctx); aerr != nil {
		return nil, aerr
	}
	item, err = orNil(item, err)
	if err != nil || item == nil {
		return nil, err
	}
	sees, err := r.Auth.Sees(ctx, owner(item))
	if err != nil || !sees {
		return nil, err
	}
	return item, nil
}

// mayReferencePolicy refuses a link to another team's escalation policy.
func (r *Resolver) mayReferencePolicy(ctx context.Context, field string, owner *int, policyID *int) error {
	if policyID == nil {
		return nil
	}
	p, err := r.PolicyStore.EscalationPolicy(ctx, *policyID)
	if errors.Is(err, db.ErrNotFound) {
		return nil // the store reports it
	}
	if err != nil {
		return err
	}
	return r.Auth.MayReference(ctx, field, owner, p.TeamID)
}

// mayReferenceRuleset refuses a link to another team's ruleset.
func (r *Resolver) mayReferenceRuleset(ctx context.Context, field string, owner *int, rulesetID *int) error {
	if rulesetID == nil {
		return nil
	}
	rs, err := r.IntegrationStore.Ruleset(ctx, *rulesetID)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.Auth.MayReference(ctx, field, owner, rs.TeamID)
}

// mayReferenceIntegrations refuses links to another team's integrations.
func (r *Resolver) mayReferenceIntegrations(ctx context.Context, field string, owner *int, ids []int) error {
	for i, id := range ids {
		integ, err := r.IntegrationStore.Integration(ctx, id)
		if errors.Is(err, db.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := r.Auth.MayReference(ctx, fmt.Sprintf("%s[%d]", field, i), owner, integ.TeamID); err != nil {
			return err
		}
	}
	return nil
}

// mayReferenceGroups refuses paging a team other than the owner: a group
// is a team, and only admins page across teams.
func (r *Resolver) mayReferenceGroups(ctx context.Context, field string, owner *int, ids []int) error {
	for i, id := range ids {
		if err := r.Auth.MayReference(ctx, fmt.Sprintf("%s[%d]", field, i), owner, &id); err != nil {
			return err
		}
	}
	return nil
}

// mayReferenceTargets checks the schedules and groups of policy steps.
func (r *Resolver) mayReferenceTargets(ctx context.Context, owner *int, steps []*graph.EscalationStepInput) error {
	for i, step := range steps {
		for j, t := range step.Targets {
			if t.ID == nil {
				continue
			}
			field := fmt.Sprintf("input.steps[%d].targets[%d].id", i, j)
			switch t.Type {
			case db.TargetGroup:
				if err := r.Auth.MayReference(ctx, field, owner, t.ID); err != nil {
					return err
				}
			case db.TargetSchedule:
				s, err := r.ScheduleStore.Schedule(ctx, *t.ID)
				if errors.Is(err, db.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if err := r.Auth.MayReference(ctx, field, owner, s.TeamID); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// mayReferenceRoutes checks the policies and groups rules route to.
func (r *Resolver) mayReferenceRoutes(ctx context.Context, owner *int, in []*graph.RuleInput) error {
	for i, rule := range in {
		if rule.Route == nil {
			continue
		}
		field := fmt.Sprintf("input.rules[%d].route", i)
		if err := r.mayReferencePolicy(ctx, field+".escalationPolicyId", owner, rule.Route.EscalationPolicyID); err != nil {
			return err
		}
		if err := r.mayReferenceGroups(ctx, field+".recipientGroupIds", owner, rule.Route.RecipientGroupIds); err != nil {
			return err
		}
	}
	return nil
}

// owned is any configured thing with an owning team.
type owned interface {
	db.Integration | db.Ruleset | db.EscalationPolicy | db.Schedule | heartbeats.Monitor | db.MaintenanceWindow
}

// teamOf is the owner of a thing, nil for organisation-wide or for no
// thing at all.
func teamOf[T owned](v *T) *int {
	if v == nil {
		return nil
	}
	switch x := any(v).(type) {
	case *db.Integration:
		return x.TeamID
	case *db.Ruleset:
		return x.TeamID
	case *db.EscalationPolicy:
		return x.TeamID
	case *db.Schedule:
		return x.TeamID
	case *heartbeats.Monitor:
		return x.TeamID
	case *db.MaintenanceWindow:
		return x.TeamID
	}
	return nil
}

func (r *Resolver) mayConfigureIntegration(ctx context.Context, id int) error {
	integ, err := r.IntegrationStore.Integration(ctx, id)
	return r.mayConfigureLoaded(ctx, teamOf(integ), err)
}

// mayReferenceIntegrationRefs checks what an integration links to.
func (r *Resolver) mayReferenceIntegrationRefs(ctx context.Context, owner, rulesetID, policyID, overdueID *int, groupIDs []int) error {
	if err := r.mayReferenceRuleset(ctx, "input.rulesetId", owner, rulesetID); err != nil {
		return err
	}
	if err := r.mayReferencePolicy(ctx, "input.escalationPolicyId", owner, policyID); err != nil {
		return err
	}
	if err := r.mayReferencePolicy(ctx, "input.overduePolicyId", owner, overdueID); err != nil {
		return err
	}
	return r.mayReferenceGroups(ctx, "input.recipientGroupIds", owner, groupIDs)
}

// stepInputs restates stored steps as input, to check what a policy
// keeps linking to when it moves to another team.
func stepInputs(steps []*db.EscalationStep) []*graph.EscalationStepInput {
	out := make([]*graph.EscalationStepInput, len(steps))
	for i, s := range steps {
		in := &graph.EscalationStepInput{DelayMinutes: s.DelayMinutes}
		for _, t := range s.Targets {
			id := t.ID
			in.Targets = append(in.Targets, &graph.EscalationTargetInput{Type: t.Type, ID: &id})
		}
		out[i] = in
	}
	return out
}

// mayReadSchedule refuses who may not see the schedule; one that does
// not exist is for the store to report.
func (r *Resolver) mayReadSchedule(ctx context.Context, id int) error {
	if _, err := r.Auth.Access(ctx); err != nil {
		return err
	}
	s, err := r.ScheduleStore.Schedule(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.Auth.MayRead(ctx, s.TeamID)
}

// mayManageTeam lets admins and the team's managers change its members;
// a team that does not exist is for the store to report to them.
func (r *Resolver) mayManageTeam(ctx context.Context, teamID int) error {
	err := r.Auth.MayManageTeam(ctx, teamID)
	if errors.Is(err, auth.ErrForbidden) {
		if _, gerr := r.Auth.Group(ctx, teamID); errors.Is(gerr, db.ErrNotFound) {
			if serr := r.mayConfigureSomething(ctx); serr == nil {
				return nil
			}
		}
	}
	return err
}

// mayActOnAlert refuses who may not act on the alert's team's alerts and
// returns the caller.
func (r *Resolver) mayActOnAlert(ctx context.Context, id int) (*db.User, error) {
	a, err := r.Auth.Access(ctx)
	if err != nil {
		return nil, err
	}
	alert, err := r.Alerting.Alert(ctx, id)
	var team *int
	if err == nil {
		if team, err = r.alertTeam(ctx, alert); err != nil {
			return nil, err
		}
	}
	if err := r.mayActLoaded(ctx, team, err); err != nil {
		return nil, err
	}
	return a.User, nil
}

// mayReadIntegration refuses who may not see the integration; one that
// does not exist is for the store to report.
func (r *Resolver) mayReadIntegration(ctx context.Context, id int) error {
	if _, err := r.Auth.Access(ctx); err != nil {
		return err
	}
	integ, err := r.IntegrationStore.Integration(ctx, id)
	if errors.Is(err, db.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return r.Auth.MayRead(ctx, integ.TeamID)
}
