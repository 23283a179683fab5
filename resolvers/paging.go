package resolvers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/invalid"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/policies"
)

// mayManageContacts reports whether the caller may see and change the
// contact methods and notification rules of userID: their own, or anyone's
// for an admin.
func mayManageContacts(ctx context.Context, userID int) bool {
	caller := auth.UserFrom(ctx)
	return caller != nil && (caller.ID == userID || caller.Role.Includes(db.RoleAdmin))
}

// requireContactOwner lets the owner of a contact method or rule act on
// it, and admins on anyone's. Authentication is checked first so an
// anonymous caller learns nothing about which ids exist.
func requireContactOwner(ctx context.Context, load func() (int, error)) error {
	if _, err := auth.Require(ctx, db.RoleMember); err != nil {
		return err
	}
	ownerID, err := load()
	if err != nil {
		return err
	}
	_, err = auth.RequireSelfOr(ctx, ownerID, db.RoleAdmin)
	return err
}

// contactMethodOwner returns the id of the contact method's owner. A
// missing method is not found, or invalid input on field when one is named.
func (r *Resolver) contactMethodOwner(ctx context.Context, id int, field string) (int, error) {
	cm, err := r.ContactStore.ContactMethod(ctx, id)
	if field != "" && errors.Is(err, db.ErrNotFound) {
		return 0, invalid.New(field, fmt.Sprintf("contact method %d does not exist", id))
	}
	if err != nil {
		return 0, err
	}
	return cm.UserID, nil
}

// redact hides most of a contact address from people other than its
// owner and admins, keeping enough to tell methods apart.
func redact(t db.ContactType, value string) string {
	const mask = "•••"
	switch t {
	case db.ContactEmail:
		if at := strings.LastIndexByte(value, '@'); at >= 0 {
			return mask + value[at:]
		}
	case db.ContactSMS, db.ContactVoice:
		if len(value) > 4 {
			return mask + value[len(value)-4:]
		}
	case db.ContactPush:
		// The keys are secrets; the push service's host tells browsers
		// apart well enough.
		var sub notifiers.PushSubscription
		if json.Unmarshal([]byte(value), &sub) == nil {
			return redact(db.ContactWebhook, sub.Endpoint)
		}
	default:
		if u, err := url.Parse(value); err == nil && u.Host != "" {
			return u.Scheme + "://" + u.Host + "/" + mask
		}
	}
	return mask
}

// scheduleLayers converts the layers of a schedule input; nil stays nil,
// meaning "unchanged" on update.
func scheduleLayers(in []*graph.ScheduleLayerInput) ([]oncall.Layer, error) {
	if in == nil {
		return nil, nil
	}
	layers := make([]oncall.Layer, len(in))
	for i, l := range in {
		layers[i] = oncall.Layer{
			Name: ptrValue(l.Name), ShiftLength: l.ShiftLength, ShiftUnit: l.ShiftUnit,
			HandoffAt: l.HandoffAt, ParticipantIDs: l.ParticipantIds,
		}
		for j, r := range l.Restrictions {
			field := fmt.Sprintf("layers[%d].restrictions[%d]", i, j)
			day := slices.Index(graph.AllWeekday, r.StartDay)
			if day < 0 {
				return nil, invalid.New(field+".startDay", "must be SUNDAY to SATURDAY")
			}
			minute, err := parseClock(r.StartTime)
			if err != nil {
				return nil, invalid.New(field+".startTime", err.Error())
			}
			layers[i].Restrictions = append(layers[i].Restrictions, oncall.Restriction{
				StartDay: time.Weekday(day), StartMinute: minute, DurationMinutes: r.DurationMinutes,
			})
		}
	}
	return layers, nil
}

// parseClock reads "HH:MM" as minutes after midnight.
func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("must be a time of day as HH:MM, 00:00 to 23:59")
	}
	return t.Hour()*60 + t.Minute(), nil
}

func formatClock(minute int) string {
	return fmt.Sprintf("%02d:%02d", minute/60, minute%60)
}

// policySteps converts the steps of a policy input; nil stays nil,
// meaning "unchanged" on update.
func policySteps(in []*graph.EscalationStepInput) []policies.StepInput {
	if in == nil {
		return nil
	}
	steps := make([]policies.StepInput, len(in))
	for i, s := range in {
		steps[i] = policies.StepInput{DelayMinutes: s.DelayMinutes, Targets: []db.Target{}}
		for _, t := range s.Targets {
			steps[i].Targets = append(steps[i].Targets, db.Target{Type: t.Type, ID: ptrValue(t.ID)})
		}
	}
	return steps
}

// usersByIDs returns the users with ids in that order, repeats kept and
// deleted users left out.
func (r *Resolver) usersByIDs(ctx context.Context, ids []int) ([]*db.User, error) {
	found, err := r.Auth.UsersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int]*db.User, len(found))
	for _, u := range found {
		byID[u.ID] = u
	}
	users := make([]*db.User, 0, len(ids))
	for _, id := range ids {
		if u, ok := byID[id]; ok {
			users = append(users, u)
		}
	}
	return users, nil
}

// shifts attaches the users to each shift with one lookup for all.
func (r *Resolver) shifts(ctx context.Context, in []oncall.Shift) ([]*graph.Shift, error) {
	var ids []int
	for _, s := range in {
		ids = append(ids, s.UserIDs...)
	}
	slices.Sort(ids)
	users, err := r.usersByIDs(ctx, slices.Compact(ids))
	if err != nil {
		return nil, err
	}
	out := make([]*graph.Shift, len(in))
	for i, s := range in {
		out[i] = &graph.Shift{Start: s.Start, End: s.End, Users: []*db.User{}}
		for _, u := range users {
			if slices.Contains(s.UserIDs, u.ID) {
				out[i].Users = append(out[i].Users, u)
			}
		}
	}
	return out, nil
}

func (r *Resolver) optionalPolicy(ctx context.Context, id *int) (*db.EscalationPolicy, error) {
	if id == nil {
		return nil, nil
	}
	return orNil(r.PolicyStore.EscalationPolicy(ctx, *id))
}
