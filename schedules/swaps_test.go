package schedules_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/schedules"
)

// swapScene is a daily rotation of r and a from 2026-01-05 09:00 UTC (r
// on call on the 5th, a on the 6th), x a user outside it; the clock
// reads 2026-01-02.
type swapScene struct {
	*config
	r, a, x int
	sched   *db.Schedule
}

func newSwapScene(t *testing.T, d *db.DB) *swapScene {
	c := newConfig(t, d)
	s := &swapScene{config: c, r: c.addUser("r"), a: c.addUser("a"), x: c.addUser("x")}
	s.sched = c.schedule("Primary", daily(jan(5, 9, 0), s.r, s.a))
	return s
}

// ask is r asking a to take 12:00 to 18:00 on the 5th.
func (s *swapScene) ask() schedules.SwapRequest {
	return schedules.SwapRequest{ScheduleID: s.sched.ID, FromUserID: s.r, ToUserID: s.a, Start: jan(5, 12, 0), End: jan(5, 18, 0)}
}

func (s *swapScene) request(in schedules.SwapRequest) *schedules.ShiftSwap {
	s.t.Helper()
	sw, err := s.svc.RequestShiftSwap(s.ctx, in)
	if err != nil {
		s.t.Fatalf("request swap: %v", err)
	}
	return sw
}

// timeline renders the final timeline of the 5th 09:00 to the 6th 09:00
// as "09-12:r 12-18:t …" with user names.
func (s *swapScene) timeline() string {
	s.t.Helper()
	shifts, err := s.svc.Shifts(s.ctx, s.sched.ID, jan(5, 9, 0), jan(6, 9, 0))
	if err != nil {
		s.t.Fatal(err)
	}
	names := map[int]string{s.r: "r", s.a: "a", s.x: "x"}
	var parts []string
	for _, sh := range shifts {
		var who []string
		for _, id := range sh.UserIDs {
			who = append(who, names[id])
		}
		parts = append(parts, fmt.Sprintf("%02d-%02d:%s", sh.Start.Hour(), sh.End.Hour(), strings.Join(who, "+")))
	}
	return strings.Join(parts, " ")
}

func (s *swapScene) audited(action audit.Action) int {
	s.t.Helper()
	n, err := s.d.NewSelect().Model((*audit.Entry)(nil)).Where("entity_type = ? AND entity_id = ? AND action = ?", audit.Schedule, s.sched.ID, action).Count(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return int(n)
}

func wantSwapRefused(t *testing.T, err error, field, reason string) {
	t.Helper()
	wantFieldError(t, err, field)
	var fe *invalid.Field
	errors.As(err, &fe)
	if !strings.Contains(fe.Reason, reason) {
		t.Fatalf("refused with %q, want a reason saying %q", fe.Reason, reason)
	}
}

func TestShiftSwapAcceptedBecomesOverride(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		sw := s.request(s.ask())
		if sw.Status != schedules.SwapPending || !sw.ExpiresAt.Equal(jan(5, 12, 0)) {
			t.Fatalf("requested swap %+v, want pending until its start", sw)
		}
		for _, user := range []int{s.r, s.a} {
			pending, err := s.svc.PendingShiftSwaps(s.ctx, user)
			if err != nil || len(pending) != 1 || pending[0].ID != sw.ID {
				t.Fatalf("pending swaps of user %d: %v %v", user, pending, err)
			}
		}
		if got := s.timeline(); got != "09-09:r" {
			t.Fatalf("a pending swap changed the timeline: %s", got)
		}

		if _, err := s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.r); !errors.Is(err, schedules.ErrNotYourSwap) {
			t.Fatalf("the requester accepted their own swap: %v", err)
		}
		accepted, err := s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a)
		if err != nil {
			t.Fatal(err)
		}
		if accepted.Status != schedules.SwapAccepted || accepted.OverrideID == nil || accepted.AnsweredAt == nil {
			t.Fatalf("accepted swap %+v", accepted)
		}
		if got, want := s.timeline(), "09-12:r 12-18:a 18-09:r"; got != want {
			t.Fatalf("timeline after the accept: %s, want %s", got, want)
		}
		o, err := s.svc.Override(s.ctx, *accepted.OverrideID)
		if err != nil {
			t.Fatal(err)
		}
		if o.UserID != s.a || o.ReplaceUserID == nil || *o.ReplaceUserID != s.r || !o.Start.Equal(jan(5, 12, 0)) || !o.End.Equal(jan(5, 18, 0)) || o.Alongside {
			t.Fatalf("the swap's override %+v", o)
		}
		if stored, _ := s.svc.ShiftSwap(s.ctx, sw.ID); stored.Status != schedules.SwapAccepted || *stored.OverrideID != o.ID {
			t.Fatalf("stored swap %+v", stored)
		}
		for _, a := range []audit.Action{audit.SwapRequested, audit.OverrideCreated, audit.SwapAccepted} {
			if n := s.audited(a); n != 1 {
				t.Errorf("%d audit entries %s on the schedule, want 1", n, a)
			}
		}
		if pending, _ := s.svc.PendingShiftSwaps(s.ctx, s.a); len(pending) != 0 {
			t.Fatalf("still pending after the accept: %v", pending)
		}

		_, err = s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a)
		wantSwapRefused(t, err, "id", "already accepted")
		_, err = s.svc.DeclineShiftSwap(s.ctx, sw.ID, s.a)
		wantSwapRefused(t, err, "id", "already accepted")
		if n := s.rows((*db.ScheduleOverride)(nil)); n != 1 {
			t.Fatalf("%d overrides after a second answer, want 1", n)
		}
	})
}

func TestShiftSwapDeclinedAndCancelled(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		sw := s.request(s.ask())
		if _, err := s.svc.DeclineShiftSwap(s.ctx, sw.ID, s.x); !errors.Is(err, schedules.ErrNotYourSwap) {
			t.Fatalf("someone else declined: %v", err)
		}
		declined, err := s.svc.DeclineShiftSwap(s.ctx, sw.ID, s.a)
		if err != nil || declined.Status != schedules.SwapDeclined || declined.OverrideID != nil {
			t.Fatalf("decline: %+v %v", declined, err)
		}
		_, err = s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a)
		wantSwapRefused(t, err, "id", "already declined")

		// The span is free to ask for again once the first is answered.
		again := s.request(s.ask())
		if _, err := s.svc.CancelShiftSwap(s.ctx, again.ID, s.a); !errors.Is(err, schedules.ErrNotYourSwap) {
			t.Fatalf("the addressee cancelled: %v", err)
		}
		cancelled, err := s.svc.CancelShiftSwap(s.ctx, again.ID, s.r)
		if err != nil || cancelled.Status != schedules.SwapCancelled {
			t.Fatalf("cancel: %+v %v", cancelled, err)
		}
		_, err = s.svc.AcceptShiftSwap(s.ctx, again.ID, s.a)
		wantSwapRefused(t, err, "id", "already cancelled")

		if n := s.rows((*db.ScheduleOverride)(nil)); n != 0 {
			t.Fatalf("%d overrides from declined and cancelled swaps", n)
		}
		if got := s.timeline(); got != "09-09:r" {
			t.Fatalf("timeline %s", got)
		}
		if s.audited(audit.SwapDeclined) != 1 || s.audited(audit.SwapCancelled) != 1 {
			t.Fatal("the decline or the cancel was not audited")
		}
		for status, want := range map[schedules.SwapStatus]int{schedules.SwapDeclined: sw.ID, schedules.SwapCancelled: again.ID} {
			list, err := s.svc.ShiftSwaps(s.ctx, s.sched.ID, &status)
			if err != nil || len(list) != 1 || list[0].ID != want {
				t.Fatalf("%s swaps: %v %v", status, list, err)
			}
		}
	})
}

func TestShiftSwapExpires(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		in := s.ask()
		in.ExpiresAt = ptr(jan(4, 0, 0))
		early := s.request(in)
		later := s.ask()
		later.Start, later.End = jan(7, 10, 0), jan(7, 11, 0) // r's again on the 7th
		byStart := s.request(later)

		s.advance(jan(4, 0, 0).Sub(*s.clock))
		got, err := s.svc.ShiftSwap(s.ctx, early.ID)
		if err != nil || got.Status != schedules.SwapExpired {
			t.Fatalf("at its expiry the swap reads %+v (%v)", got, err)
		}
		_, err = s.svc.AcceptShiftSwap(s.ctx, early.ID, s.a)
		wantSwapRefused(t, err, "id", "expired at 2026-01-04T00:00:00Z")
		_, err = s.svc.CancelShiftSwap(s.ctx, early.ID, s.r)
		wantSwapRefused(t, err, "id", "expired")
		if pending, _ := s.svc.PendingShiftSwaps(s.ctx, s.a); len(pending) != 1 || pending[0].ID != byStart.ID {
			t.Fatalf("pending after the first expired: %v", pending)
		}
		expired := schedules.SwapExpired
		if list, _ := s.svc.ShiftSwaps(s.ctx, s.sched.ID, &expired); len(list) != 1 || list[0].ID != early.ID {
			t.Fatalf("expired swaps: %v", list)
		}

		// Without expiresAt, a swap expires at its start.
		s.advance(jan(7, 10, 0).Sub(*s.clock))
		_, err = s.svc.AcceptShiftSwap(s.ctx, byStart.ID, s.a)
		wantSwapRefused(t, err, "id", "expired")
		if n := s.rows((*db.ScheduleOverride)(nil)); n != 0 {
			t.Fatalf("an expired swap made %d overrides", n)
		}
	})
}

func TestShiftSwapValidation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		gone := s.addUser("gone")
		withGone := s.schedule("With a deleted user", daily(jan(5, 9, 0), s.r, s.a), daily(jan(5, 9, 0), s.r, gone))
		if _, err := s.d.NewDelete().Model((*db.User)(nil)).Where("id = ?", gone).Exec(s.ctx); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name          string
			edit          func(in *schedules.SwapRequest)
			field, reason string
		}{
			{"unknown schedule", func(in *schedules.SwapRequest) { in.ScheduleID += 1000 }, "scheduleId", "does not exist"},
			{"requester not a participant", func(in *schedules.SwapRequest) { in.FromUserID, in.ToUserID = s.x, s.a }, "scheduleId", "not a participant"},
			{"addressee not a participant", func(in *schedules.SwapRequest) { in.ToUserID = s.x }, "toUserId", "not a participant"},
			{"addressee is the requester", func(in *schedules.SwapRequest) { in.ToUserID = s.r }, "toUserId", "someone other than you"},
			{"no start", func(in *schedules.SwapRequest) { in.Start = time.Time{} }, "start", "required"},
			{"end before start", func(in *schedules.SwapRequest) { in.End = in.Start.Add(-time.Hour) }, "end", "after start"},
			{"empty span", func(in *schedules.SwapRequest) { in.End = in.Start }, "end", "after start"},
			{"span in the past", func(in *schedules.SwapRequest) { in.Start, in.End = jan(1, 9, 0), jan(1, 10, 0) }, "start", "in the future"},
			{"expiry after start", func(in *schedules.SwapRequest) { in.ExpiresAt = ptr(jan(5, 13, 0)) }, "expiresAt", "at or before start"},
			{"expiry in the past", func(in *schedules.SwapRequest) { in.ExpiresAt = ptr(jan(1, 0, 0)) }, "expiresAt", "in the future"},
			{"requester not on call for all of it", func(in *schedules.SwapRequest) { in.End = jan(6, 12, 0) }, "start",
				"not from 2026-01-06T09:00:00Z to 2026-01-06T12:00:00Z"},
			{"requester not on call at all", func(in *schedules.SwapRequest) { in.FromUserID, in.ToUserID = s.a, s.r }, "start", "not on call"},
			// gone is still in the higher layer's rotation, but their
			// account is deleted: handing r's time to them would page nobody.
			{"nobody left on call", func(in *schedules.SwapRequest) {
				in.ScheduleID, in.FromUserID, in.ToUserID, in.Start, in.End = withGone.ID, s.r, gone, jan(5, 10, 0), jan(5, 11, 0)
			}, "toUserId", "would leave nobody on call from 2026-01-05T10:00:00Z to 2026-01-05T11:00:00Z"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				in := s.ask()
				tc.edit(&in)
				_, err := s.svc.RequestShiftSwap(s.ctx, in)
				wantSwapRefused(t, err, tc.field, tc.reason)
				if n := s.rows((*schedules.ShiftSwap)(nil)); n != 0 {
					t.Fatalf("a refused request stored %d swaps", n)
				}
			})
		}

		first := s.request(s.ask())
		overlapping := s.ask()
		overlapping.Start, overlapping.End = jan(5, 17, 0), jan(5, 19, 0)
		_, err := s.svc.RequestShiftSwap(s.ctx, overlapping)
		wantSwapRefused(t, err, "start", fmt.Sprintf("overlaps your pending shift swap %d", first.ID))
		if n := s.rows((*schedules.ShiftSwap)(nil)); n != 1 {
			t.Fatalf("%d swaps after an overlapping request, want 1", n)
		}
		// Next to it is fine.
		overlapping.Start = jan(5, 18, 0)
		s.request(overlapping)
	})
}

// The schedule may change between the request and the answer; the
// accept checks it again and changes nothing when it no longer holds.
func TestShiftSwapAcceptRechecksTheSchedule(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		sw := s.request(s.ask())

		// An admin puts x on call instead of everyone for an hour of it.
		cover, err := s.svc.CreateOverride(s.ctx, schedules.OverrideInput{ScheduleID: s.sched.ID, UserID: s.x, Start: jan(5, 14, 0), End: jan(5, 15, 0)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a)
		wantSwapRefused(t, err, "id", "the schedule changed since the request: you are not on call for the whole span: not from 2026-01-05T14:00:00Z")
		if err := s.svc.DeleteOverride(s.ctx, cover.ID); err != nil {
			t.Fatal(err)
		}

		// a leaves the rotation.
		if _, err := s.svc.UpdateSchedule(s.ctx, s.sched.ID, schedules.ScheduleInput{Layers: []oncall.Layer{daily(jan(5, 9, 0), s.r, s.x)}}); err != nil {
			t.Fatal(err)
		}
		_, err = s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a)
		wantSwapRefused(t, err, "id", "you are no longer a participant")

		if got, _ := s.svc.ShiftSwap(s.ctx, sw.ID); got.Status != schedules.SwapPending {
			t.Fatalf("a refused accept left the swap %s", got.Status)
		}
		if n := s.rows((*db.ScheduleOverride)(nil)); n != 0 {
			t.Fatalf("a refused accept left %d overrides", n)
		}
		if s.audited(audit.SwapAccepted) != 0 {
			t.Fatal("a refused accept was audited")
		}

		// Back in the rotation, the same swap goes through.
		if _, err := s.svc.UpdateSchedule(s.ctx, s.sched.ID, schedules.ScheduleInput{Layers: []oncall.Layer{daily(jan(5, 9, 0), s.r, s.a)}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.svc.AcceptShiftSwap(s.ctx, sw.ID, s.a); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAlongsideOverride(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		s := newSwapScene(t, d)
		in := schedules.OverrideInput{ScheduleID: s.sched.ID, UserID: s.x, Alongside: true, Start: jan(5, 12, 0), End: jan(5, 18, 0)}
		bad := in
		bad.ReplaceUserID = &s.r
		_, err := s.svc.CreateOverride(s.ctx, bad)
		wantFieldError(t, err, "replaceUserId")
		o, err := s.svc.CreateOverride(s.ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if !o.Alongside {
			t.Fatal("stored override is not alongside")
		}
		if got, want := s.timeline(), "09-12:r 12-18:r+x 18-09:r"; got != want {
			t.Fatalf("timeline %s, want %s", got, want)
		}
		onCall, err := s.svc.OnCallUsers(s.ctx, s.d, s.sched.ID, jan(5, 13, 0))
		if err != nil || !slices.Equal(onCall, []int{s.r, s.x}) {
			t.Fatalf("on call at 13:00: %v %v", onCall, err)
		}
	})
}
