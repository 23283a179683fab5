package oncall

import (
	"fmt"
	"slices"
	"time"
)

// compiled is a validated Schedule prepared for repeated evaluation.
type compiled struct {
	loc *time.Location
	// layers holds only layers with participants, lowest first: an empty
	// layer never has anyone on call, so it can neither win nor change
	// anything.
	layers []compiledLayer
	// overrides are sorted by Start, then by their index in the Schedule,
	// which is the order replace-one overrides apply in.
	overrides []Override
}

type compiledLayer struct {
	rot          rotation
	participants []int
	restrictions []Restriction
}

func (s Schedule) compile() (*compiled, error) {
	if fe := s.validate(); fe != nil {
		return nil, fmt.Errorf("oncall: invalid schedule: %w", fe)
	}
	loc, err := loadZone(s.TimeZone)
	if err != nil { // unreachable after validate; kept so a nil loc never escapes
		return nil, fmt.Errorf("oncall: time zone: %w", err)
	}
	c := &compiled{loc: loc}
	for _, l := range s.Layers {
		if len(l.ParticipantIDs) == 0 {
			continue
		}
		c.layers = append(c.layers, compiledLayer{
			rot:          newRotation(l, loc),
			participants: l.ParticipantIDs,
			restrictions: l.Restrictions,
		})
	}
	c.overrides = slices.Clone(s.Overrides)
	slices.SortStableFunc(c.overrides, func(a, b Override) int { return a.Start.Compare(b.Start) })
	return c, nil
}

// OnCall returns the sorted, de-duplicated ids of the users on call at t,
// or nil when nobody is.
func (s Schedule) OnCall(t time.Time) ([]int, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	return c.onCall(t.Round(0), nil), nil
}

// onCall appends the on-call set at t to buf[:0] and returns it, sorted
// and de-duplicated; the buffer lets Shifts evaluate without allocating.
func (c *compiled) onCall(t time.Time, buf []int) []int {
	set := buf[:0]
	for i := len(c.layers) - 1; i >= 0; i-- {
		l := &c.layers[i]
		if !activeAt(l.restrictions, t, c.loc) {
			continue
		}
		k := l.rot.index(t)
		set = append(set, l.participants[floorMod(k, int64(len(l.participants)))])
		break
	}

	replaced := false
	for _, o := range c.overrides {
		if o.ReplaceUserID == 0 && !o.Alongside && overrideActive(o, t) {
			if !replaced {
				set = set[:0]
				replaced = true
			}
			set = append(set, o.UserID)
		}
	}
	if !replaced {
		for _, o := range c.overrides {
			if o.ReplaceUserID == 0 || o.Alongside || !overrideActive(o, t) {
				continue
			}
			for j, id := range set {
				if id == o.ReplaceUserID {
					set[j] = o.UserID
				}
			}
		}
	}

	for _, o := range c.overrides {
		if o.Alongside && overrideActive(o, t) {
			set = append(set, o.UserID)
		}
	}

	if len(set) == 0 {
		return nil
	}
	slices.Sort(set)
	return slices.Compact(set)
}

func overrideActive(o Override, t time.Time) bool {
	return !t.Before(o.Start) && t.Before(o.End)
}
