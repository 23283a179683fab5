package oncall

import (
	"fmt"
	"slices"
	"time"
)

// maxWindow bounds Shifts and NextChange so the work done for one call is
// bounded whatever the input.
const maxWindow = 366 * 24 * time.Hour

// maxHandoffs bounds the hand-offs one layer can have in maxWindow: the
// shortest shift is an hour. The slack covers DST-shortened days.
const maxHandoffs = 366*24 + 16

// Shifts returns the final timeline clipped to [from, to): consecutive
// spans with identical on-call sets are merged, and spans with nobody on
// call are omitted. The window must be non-empty and at most 366 days.
func (s Schedule) Shifts(from, to time.Time) ([]Shift, error) {
	from, to = from.Round(0), to.Round(0)
	if !to.After(from) {
		return nil, fmt.Errorf("oncall: shifts: end %s is not after start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > maxWindow {
		return nil, fmt.Errorf("oncall: shifts: window %s to %s exceeds 366 days", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	c, err := s.compile()
	if err != nil {
		return nil, err
	}

	points := c.changePoints(from, to)
	var (
		out  []Shift
		buf  []int
		prev []int // set of the last shift in out, if it ends at the segment start
	)
	for i, start := range points {
		end := to
		if i+1 < len(points) {
			end = points[i+1]
		}
		buf = c.onCall(start, buf)
		if len(buf) == 0 {
			prev = nil
			continue
		}
		if prev != nil && slices.Equal(prev, buf) {
			out[len(out)-1].End = end.UTC()
			continue
		}
		ids := slices.Clone(buf)
		out = append(out, Shift{Start: start.UTC(), End: end.UTC(), UserIDs: ids})
		prev = ids
	}
	return out, nil
}

// changePoints returns from followed by every instant in (from, to) at
// which the on-call set may change, sorted and distinct. The set is
// constant between consecutive points, so one evaluation per point is
// enough.
func (c *compiled) changePoints(from, to time.Time) []time.Time {
	points := []time.Time{from}
	add := func(t time.Time) {
		if t.After(from) && t.Before(to) {
			points = append(points, t)
		}
	}
	for i := range c.layers {
		l := &c.layers[i]
		k := l.rot.index(from)
		for n := 0; n < maxHandoffs; n++ {
			k++
			b := l.rot.boundary(k)
			if !b.Before(to) {
				break
			}
			add(b)
		}
		restrictionEdges(l.restrictions, from, to, c.loc, add)
	}
	for _, o := range c.overrides {
		add(o.Start)
		add(o.End)
	}
	slices.SortFunc(points, time.Time.Compare)
	return slices.CompactFunc(points, time.Time.Equal)
}

// NextChange returns the first instant after t at which the on-call set
// may change: a hand-off, a restriction edge or an override edge. It is
// conservative, since the set can stay the same there (a hand-off from a
// user to the same user, or one hidden under a higher layer); callers just
// re-evaluate. It returns the zero time if there is no such instant within
// 366 days.
func (s Schedule) NextChange(t time.Time) (time.Time, error) {
	c, err := s.compile()
	if err != nil {
		return time.Time{}, err
	}
	t = t.Round(0)
	var next time.Time
	for i := range c.layers {
		l := &c.layers[i]
		next = earliestAfter(next, l.rot.boundary(l.rot.index(t)+1), t)
		if len(l.restrictions) > 0 {
			next = earliestAfter(next, nextRestrictionEdge(l.restrictions, t, c.loc), t)
		}
	}
	for _, o := range c.overrides {
		next = earliestAfter(next, o.Start, t)
		next = earliestAfter(next, o.End, t)
	}
	if next.IsZero() || next.After(t.Add(maxWindow)) {
		return time.Time{}, nil
	}
	return next.UTC(), nil
}
