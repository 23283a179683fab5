package schedules

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/oncall"
)

// A shift swap hands a span of the requester's shift to another
// participant of the schedule, who accepts or declines it. Accepting
// turns it into an override (the addressee instead of the requester for
// the span) in the same transaction, after checking the schedule again:
// it may have changed since the request. A swap left unanswered expires
// at its start, or earlier when the requester says so; expiry is read
// off the clock whenever a swap is looked at, so it needs no timer.

// SwapStatus is where a shift swap stands.
type SwapStatus string

const (
	SwapPending   SwapStatus = "PENDING"
	SwapAccepted  SwapStatus = "ACCEPTED"
	SwapDeclined  SwapStatus = "DECLINED"
	SwapCancelled SwapStatus = "CANCELLED"
	// SwapExpired is never stored: a pending swap whose expiry has
	// passed reads as expired.
	SwapExpired SwapStatus = "EXPIRED"
)

// ShiftSwap is one request to take over a span of a shift.
type ShiftSwap struct {
	bun.BaseModel `bun:"table:shift_swaps"`

	ID         int        `bun:"id,pk,autoincrement"`
	ScheduleID int        `bun:"schedule_id"`
	FromUserID int        `bun:"from_user_id"`
	ToUserID   int        `bun:"to_user_id"`
	Start      time.Time  `bun:"start_at"`
	End        time.Time  `bun:"end_at"`
	ExpiresAt  time.Time  `bun:"expires_at"`
	Status     SwapStatus `bun:"status"`
	// LinkTokenHash is the SHA-256 of the token in the addressee's
	// accept and decline links; the token itself is never stored here.
	LinkTokenHash string `bun:"link_token_hash"`
	// OverrideID is the override an accepted swap became.
	OverrideID *int       `bun:"override_id"`
	CreatedAt  time.Time  `bun:"created_at"`
	AnsweredAt *time.Time `bun:"answered_at"`
}

// SwapRequest is what requestShiftSwap takes. FromUserID is the caller.
type SwapRequest struct {
	ScheduleID int
	FromUserID int
	ToUserID   int
	Start, End time.Time
	// ExpiresAt defaults to Start.
	ExpiresAt *time.Time
}

var (
	// ErrNotYourSwap is an answer or a cancel by someone the swap does
	// not leave it to: only the addressee answers, only the requester
	// cancels.
	ErrNotYourSwap = errors.New("schedules: this shift swap is not yours to answer or cancel")
	// ErrSwapLinkUnknown is a link token that was never issued, or whose
	// swap is gone.
	ErrSwapLinkUnknown = errors.New("this link is not valid")
)

// maxSwapSpan bounds a swap as overrides are bounded.
const maxSwapSpan = maxShiftsWindow

// settle reads a pending swap past its expiry as expired.
func (sw *ShiftSwap) settle(now time.Time) *ShiftSwap {
	if sw.Status == SwapPending && !now.Before(sw.ExpiresAt) {
		sw.Status = SwapExpired
	}
	return sw
}

// RequestShiftSwap stores a pending swap and queues its notice to the
// addressee, with accept and decline links, in one transaction.
func (s *Store) RequestShiftSwap(ctx context.Context, in SwapRequest) (*ShiftSwap, error) {
	now := s.clock()
	expires, err := checkSwapRequest(in, now)
	if err != nil {
		return nil, err
	}
	token, hash, err := newSwapToken()
	if err != nil {
		return nil, err
	}
	sw := &ShiftSwap{
		ScheduleID: in.ScheduleID, FromUserID: in.FromUserID, ToUserID: in.ToUserID,
		Start: in.Start.UTC().Truncate(time.Microsecond), End: in.End.UTC().Truncate(time.Microsecond), ExpiresAt: expires,
		Status: SwapPending, LinkTokenHash: hash, CreatedAt: now,
	}
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		sched, err := scheduleForSwap(ctx, tx, sw)
		if err != nil {
			return err
		}
		if err := checkParticipants(sched, sw); err != nil {
			return err
		}
		if err := refuseOverlap(ctx, tx, sw, now); err != nil {
			return err
		}
		if err := s.checkTimeline(ctx, tx, sched, sw); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(sw).Exec(ctx); err != nil {
			return fmt.Errorf("store shift swap: %w", err)
		}
		if err := audit.Record(ctx, tx, now, audit.Schedule, sw.ScheduleID, audit.SwapRequested, nil, recordOfSwap(sw)); err != nil {
			return err
		}
		return s.tell(ctx, tx, sched, sw, swapAsked, token)
	})
	if err != nil {
		return nil, err
	}
	return sw, nil
}

// checkSwapRequest checks what needs no database and returns when the
// swap expires.
func checkSwapRequest(in SwapRequest, now time.Time) (time.Time, error) {
	switch {
	case in.Start.IsZero():
		return time.Time{}, invalid.New("start", "is required")
	case !in.End.After(in.Start):
		return time.Time{}, invalid.New("end", "must be after start")
	case in.End.Sub(in.Start) > maxSwapSpan:
		return time.Time{}, invalid.New("end", "must be at most 366 days after start")
	case !in.Start.After(now):
		return time.Time{}, invalid.New("start", "must be in the future: a swap is answered before its span begins")
	case in.ToUserID == in.FromUserID:
		return time.Time{}, invalid.New("toUserId", "must be someone other than you")
	}
	expires := in.Start
	if in.ExpiresAt != nil {
		expires = *in.ExpiresAt
		if expires.After(in.Start) {
			return time.Time{}, invalid.New("expiresAt", "must be at or before start")
		}
		if !expires.After(now) {
			return time.Time{}, invalid.New("expiresAt", "must be in the future")
		}
	}
	return expires.UTC().Truncate(time.Microsecond), nil
}

// scheduleForSwap loads the swap's schedule with the overrides over its
// span.
func scheduleForSwap(ctx context.Context, idb bun.IDB, sw *ShiftSwap) (*db.Schedule, error) {
	if err := db.RequireRows(ctx, idb, (*db.Schedule)(nil), "scheduleId", "schedule", []int{sw.ScheduleID}); err != nil {
		return nil, err
	}
	sched, err := scheduleByID(ctx, idb, sw.ScheduleID)
	if err != nil {
		return nil, err
	}
	if sched.Overrides, err = overridesBetween(ctx, idb, sw.ScheduleID, sw.Start, sw.End); err != nil {
		return nil, err
	}
	return sched, nil
}

// participates tells whether the user is in one of the schedule's layers.
func participates(sched *db.Schedule, userID int) bool {
	for _, l := range sched.Layers {
		if slices.Contains(l.ParticipantIDs, userID) {
			return true
		}
	}
	return false
}

func checkParticipants(sched *db.Schedule, sw *ShiftSwap) error {
	if !participates(sched, sw.FromUserID) {
		return invalid.New("scheduleId", "you are not a participant of this schedule")
	}
	if !participates(sched, sw.ToUserID) {
		return invalid.New("toUserId", "is not a participant of this schedule")
	}
	return nil
}

// refuseOverlap refuses a second pending swap of the requester's that
// overlaps this one: both could be accepted, handing one hour twice.
func refuseOverlap(ctx context.Context, idb bun.IDB, sw *ShiftSwap, now time.Time) error {
	var ids []int
	err := idb.NewSelect().Model((*ShiftSwap)(nil)).Column("id").
		Where("schedule_id = ? AND from_user_id = ? AND status = ? AND expires_at > ?", sw.ScheduleID, sw.FromUserID, SwapPending, now).
		Where("start_at < ? AND end_at > ?", sw.End, sw.Start).Where("id <> ?", sw.ID).
		Limit(1).Scan(ctx, &ids)
	if err != nil {
		return fmt.Errorf("find overlapping shift swaps: %w", err)
	}
	if len(ids) > 0 {
		return invalid.Fieldf("start", "overlaps your pending shift swap %d; cancel it first", ids[0])
	}
	return nil
}

// checkTimeline checks the swap against the schedule's final timeline:
// the requester must be on call for the whole span (a swap hands over
// one's own shift, nobody else's), and with the swap applied someone who
// still has an account must be on call at every instant of it. Accounts
// matter because a deleted user stays in a rotation but is paged by
// nothing (see OnCallUsers).
func (s *Store) checkTimeline(ctx context.Context, idb bun.IDB, sched *db.Schedule, sw *ShiftSwap) error {
	spec := sched.Spec()
	before, err := spec.Shifts(sw.Start, sw.End)
	if err != nil {
		return fmt.Errorf("shifts of schedule %d: %w", sched.ID, err)
	}
	if gap, ok := uncovered(before, sw.Start, sw.End, func(ids []int) bool { return slices.Contains(ids, sw.FromUserID) }); ok {
		return invalid.Fieldf("start", "you are not on call for the whole span: not from %s to %s", gap.Start.Format(time.RFC3339), gap.End.Format(time.RFC3339))
	}
	spec.Overrides = append(spec.Overrides, oncall.Override{UserID: sw.ToUserID, ReplaceUserID: sw.FromUserID, Start: sw.Start, End: sw.End})
	after, err := spec.Shifts(sw.Start, sw.End)
	if err != nil {
		return fmt.Errorf("shifts of schedule %d: %w", sched.ID, err)
	}
	existing, err := existingUsers(ctx, idb, after)
	if err != nil {
		return err
	}
	if gap, ok := uncovered(after, sw.Start, sw.End, func(ids []int) bool {
		return slices.ContainsFunc(ids, func(id int) bool { return existing[id] })
	}); ok {
		return invalid.Fieldf("toUserId", "the swap would leave nobody on call from %s to %s", gap.Start.Format(time.RFC3339), gap.End.Format(time.RFC3339))
	}
	return nil
}

// uncovered returns the first part of [from, to) where no shift
// satisfies ok; Shifts leaves out spans with nobody on call, so a hole
// between shifts counts too.
func uncovered(shifts []oncall.Shift, from, to time.Time, ok func(ids []int) bool) (oncall.Shift, bool) {
	at := from
	for _, sh := range shifts {
		if sh.Start.After(at) {
			return oncall.Shift{Start: at, End: sh.Start}, true
		}
		if !ok(sh.UserIDs) {
			return oncall.Shift{Start: sh.Start, End: sh.End}, true
		}
		at = sh.End
	}
	if at.Before(to) {
		return oncall.Shift{Start: at, End: to}, true
	}
	return oncall.Shift{}, false
}

func existingUsers(ctx context.Context, idb bun.IDB, shifts []oncall.Shift) (map[int]bool, error) {
	var ids []int
	for _, sh := range shifts {
		ids = append(ids, sh.UserIDs...)
	}
	found := map[int]bool{}
	if len(ids) == 0 {
		return found, nil
	}
	var existing []int
	if err := idb.NewSelect().Model((*db.User)(nil)).Column("id").Where("id IN (?)", bun.In(ids)).Scan(ctx, &existing); err != nil {
		return nil, fmt.Errorf("find users on call: %w", err)
	}
	for _, id := range existing {
		found[id] = true
	}
	return found, nil
}

// AcceptShiftSwap turns the pending swap into an override, as byUserID,
// who must be its addressee. The schedule is checked again as at the
// request.
func (s *Store) AcceptShiftSwap(ctx context.Context, id, byUserID int) (*ShiftSwap, error) {
	return s.answer(ctx, id, byUserID, SwapAccepted)
}

// DeclineShiftSwap refuses the pending swap, as byUserID, who must be
// its addressee.
func (s *Store) DeclineShiftSwap(ctx context.Context, id, byUserID int) (*ShiftSwap, error) {
	return s.answer(ctx, id, byUserID, SwapDeclined)
}

// CancelShiftSwap withdraws the pending swap, as byUserID, who must be
// its requester.
func (s *Store) CancelShiftSwap(ctx context.Context, id, byUserID int) (*ShiftSwap, error) {
	return s.answer(ctx, id, byUserID, SwapCancelled)
}

// answer moves a pending swap to status. The conditional update keeps
// two concurrent answers from both taking effect: the second finds the
// swap no longer pending.
func (s *Store) answer(ctx context.Context, id, byUserID int, status SwapStatus) (*ShiftSwap, error) {
	var sw *ShiftSwap
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := s.clock()
		var err error
		if sw, err = swapByID(ctx, tx, id); err != nil {
			return err
		}
		owner := sw.ToUserID
		if status == SwapCancelled {
			owner = sw.FromUserID
		}
		if byUserID != owner {
			return ErrNotYourSwap
		}
		if err := sw.settle(now).Answerable(); err != nil {
			return err
		}
		before := recordOfSwap(sw)
		sched, err := scheduleForSwap(ctx, tx, sw)
		if err != nil {
			return err
		}
		if status == SwapAccepted {
			if err := s.acceptTx(ctx, tx, sched, sw); err != nil {
				return err
			}
		}
		res, err := tx.NewUpdate().Model((*ShiftSwap)(nil)).
			Set("status = ?", status).Set("answered_at = ?", now).Set("override_id = ?", sw.OverrideID).
			Where("id = ? AND status = ?", sw.ID, SwapPending).Exec(ctx)
		if err != nil {
			return fmt.Errorf("answer shift swap %d: %w", sw.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return invalid.New("id", "this shift swap was answered meanwhile")
		}
		sw.Status, sw.AnsweredAt = status, &now
		action := map[SwapStatus]audit.Action{SwapAccepted: audit.SwapAccepted, SwapDeclined: audit.SwapDeclined, SwapCancelled: audit.SwapCancelled}[status]
		if err := audit.Record(ctx, tx, now, audit.Schedule, sw.ScheduleID, action, before, recordOfSwap(sw)); err != nil {
			return err
		}
		return s.tell(ctx, tx, sched, sw, noticeOf(status), "")
	})
	if err != nil {
		return nil, err
	}
	return sw, nil
}

// acceptTx checks the swap against the schedule as it is now and stores
// its override.
func (s *Store) acceptTx(ctx context.Context, tx bun.Tx, sched *db.Schedule, sw *ShiftSwap) error {
	if err := checkParticipants(sched, sw); err != nil {
		var fe *invalid.Field
		if errors.As(err, &fe) && fe.Name == "scheduleId" {
			return invalid.New("id", "the requester is no longer a participant of the schedule")
		}
		return invalid.New("id", "you are no longer a participant of the schedule")
	}
	if err := s.checkTimeline(ctx, tx, sched, sw); err != nil {
		var fe *invalid.Field
		if errors.As(err, &fe) {
			// Named after what the accept takes; the reason says what
			// changed since the request.
			return invalid.New("id", "the schedule changed since the request: "+fe.Reason)
		}
		return err
	}
	replace := sw.FromUserID
	o, err := s.createOverrideTx(ctx, tx, OverrideInput{ScheduleID: sw.ScheduleID, UserID: sw.ToUserID, ReplaceUserID: &replace, Start: sw.Start, End: sw.End})
	if err != nil {
		return err
	}
	sw.OverrideID = &o.ID
	return nil
}

// Answerable refuses to answer a swap that is no longer pending, saying
// why; expiry must have been applied (as every read of the store does).
func (sw *ShiftSwap) Answerable() error {
	switch sw.Status {
	case SwapPending:
		return nil
	case SwapExpired:
		return invalid.Fieldf("id", "this shift swap expired at %s without an answer; the requester may ask again", sw.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		return invalid.Fieldf("id", "this shift swap was already %s", statusWord(sw.Status))
	}
}

func statusWord(st SwapStatus) string {
	return map[SwapStatus]string{SwapAccepted: "accepted", SwapDeclined: "declined", SwapCancelled: "cancelled", SwapExpired: "expired"}[st]
}

func swapByID(ctx context.Context, idb bun.IDB, id int) (*ShiftSwap, error) {
	sw := new(ShiftSwap)
	if err := idb.NewSelect().Model(sw).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load shift swap %d: %w", id, db.Classify(err))
	}
	return sw, nil
}

// ShiftSwap returns one swap, expiry applied.
func (s *Store) ShiftSwap(ctx context.Context, id int) (*ShiftSwap, error) {
	sw, err := swapByID(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	return sw.settle(s.clock()), nil
}

// ShiftSwaps returns the schedule's swaps, latest first; a non-nil
// status keeps those in it (EXPIRED: pending ones past their expiry).
func (s *Store) ShiftSwaps(ctx context.Context, scheduleID int, status *SwapStatus) ([]*ShiftSwap, error) {
	q := s.db.NewSelect().Where("schedule_id = ?", scheduleID)
	return s.listSwaps(ctx, q, status)
}

// PendingShiftSwaps returns the swaps awaiting an answer that the user
// asked for or is asked to answer.
func (s *Store) PendingShiftSwaps(ctx context.Context, userID int) ([]*ShiftSwap, error) {
	pending := SwapPending
	q := s.db.NewSelect().Where("from_user_id = ? OR to_user_id = ?", userID, userID)
	return s.listSwaps(ctx, q, &pending)
}

func (s *Store) listSwaps(ctx context.Context, q *bun.SelectQuery, status *SwapStatus) ([]*ShiftSwap, error) {
	now := s.clock()
	list := []*ShiftSwap{}
	q = q.Model(&list)
	if status != nil {
		switch *status {
		case SwapPending:
			q = q.Where("status = ? AND expires_at > ?", SwapPending, now)
		case SwapExpired:
			q = q.Where("status = ? AND expires_at <= ?", SwapPending, now)
		default:
			q = q.Where("status = ?", *status)
		}
	}
	if err := q.OrderExpr("created_at DESC, id DESC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list shift swaps: %w", err)
	}
	for _, sw := range list {
		sw.settle(now)
	}
	return list, nil
}

// IsParticipant tells whether the user is in one of the schedule's
// layers, which lets them put themselves on call and swap shifts.
func (s *Store) IsParticipant(ctx context.Context, scheduleID, userID int) (bool, error) {
	sched, err := scheduleByID(ctx, s.db, scheduleID)
	if err != nil {
		return false, err
	}
	return participates(sched, userID), nil
}

// newSwapToken returns a link token of 256 random bits and its hash.
func newSwapToken() (token, hash string, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("generate shift swap link: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	return token, hashSwapToken(token), nil
}

func hashSwapToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SwapByLink returns the swap a link token was sent for, expiry applied,
// so a page can say what answering will do.
func (s *Store) SwapByLink(ctx context.Context, token string) (*ShiftSwap, error) {
	sw := new(ShiftSwap)
	if err := s.db.NewSelect().Model(sw).Where("link_token_hash = ?", hashSwapToken(token)).Scan(ctx); err != nil {
		if errors.Is(db.Classify(err), db.ErrNotFound) {
			return nil, ErrSwapLinkUnknown
		}
		return nil, fmt.Errorf("load shift swap by link: %w", err)
	}
	return sw.settle(s.clock()), nil
}

// AnswerByLink accepts or declines the swap a link was sent for, as its
// addressee, recorded in the audit log as them. A link works once: the
// answer ends the swap's pending state, and with it both links.
func (s *Store) AnswerByLink(ctx context.Context, token string, accept bool) (*ShiftSwap, error) {
	sw, err := s.SwapByLink(ctx, token)
	if err != nil {
		return nil, err
	}
	if err := sw.Answerable(); err != nil {
		return sw, err
	}
	to := new(db.User)
	if err := s.db.NewSelect().Model(to).Where("id = ?", sw.ToUserID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load the addressee of shift swap %d: %w", sw.ID, db.Classify(err))
	}
	ctx = audit.WithActor(ctx, to.ID, to.Email)
	if accept {
		return s.AcceptShiftSwap(ctx, sw.ID, sw.ToUserID)
	}
	return s.DeclineShiftSwap(ctx, sw.ID, sw.ToUserID)
}
