package schedules

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/notifiers"
)

// Notices delivers what a shift swap has to tell a person over their
// contact methods; *alerting.Service implements it with retried jobs.
type Notices interface {
	// QueueNotice queues notice for the user inside tx, so it goes out
	// if and only if tx commits. key tells this notice apart from any
	// other; link URLs in notice are paths under Klaxon's public URL.
	QueueNotice(ctx context.Context, tx bun.Tx, userID int, key string, notice notifiers.Notice) error
}

// UseNotices sets who delivers the swaps' notices. It is separate from
// NewStore because the deliverer (alerting) reads the schedules too.
// Without it, swaps work and nobody is told.
func (s *Store) UseNotices(n Notices) { s.notices = n }

type swapNotice int

const (
	swapAsked swapNotice = iota
	swapWasAccepted
	swapWasDeclined
	swapWasCancelled
)

func noticeOf(status SwapStatus) swapNotice {
	switch status {
	case SwapAccepted:
		return swapWasAccepted
	case SwapDeclined:
		return swapWasDeclined
	}
	return swapWasCancelled
}

// SwapLinkPath is where a swap's link answers it: answer is "accept" or
// "decline".
func SwapLinkPath(token, answer string) string { return "/swaps/" + token + "/" + answer }

// tell queues the notice of a swap's step: the request goes to the
// addressee with the links (token is only known then); an answer goes
// to the requester, a cancel to the addressee.
func (s *Store) tell(ctx context.Context, tx bun.Tx, sched *db.Schedule, sw *ShiftSwap, what swapNotice, token string) error {
	if s.notices == nil {
		return nil
	}
	names, err := userNames(ctx, tx, sw.FromUserID, sw.ToUserID)
	if err != nil {
		return err
	}
	from, to := names[sw.FromUserID], names[sw.ToUserID]
	span := describeSpan(sched, sw)
	var n notifiers.Notice
	recipient := sw.FromUserID
	key := fmt.Sprintf("swap:%d:%s", sw.ID, sw.Status)
	switch what {
	case swapAsked:
		recipient = sw.ToUserID
		n = notifiers.Notice{
			Title: fmt.Sprintf("%s asks you to take their shift on %s", from, sched.Name),
			Text: fmt.Sprintf("%s asks you to be on call for %s instead of them, %s. Answer before %s; without an answer the request expires.",
				from, sched.Name, span, inZone(sched, sw.ExpiresAt)),
			Links: []notifiers.NoticeLink{
				{Label: "Accept", URL: SwapLinkPath(token, "accept")},
				{Label: "Decline", URL: SwapLinkPath(token, "decline")},
			},
		}
	case swapWasAccepted:
		n = notifiers.Notice{
			Title: fmt.Sprintf("%s took your shift on %s", to, sched.Name),
			Text:  fmt.Sprintf("%s accepted: they are on call for %s instead of you, %s.", to, sched.Name, span),
		}
	case swapWasDeclined:
		n = notifiers.Notice{
			Title: fmt.Sprintf("%s declined your shift swap on %s", to, sched.Name),
			Text:  fmt.Sprintf("%s declined to be on call for %s instead of you, %s. You are still on call.", to, sched.Name, span),
		}
	case swapWasCancelled:
		recipient = sw.ToUserID
		n = notifiers.Notice{
			Title: fmt.Sprintf("%s withdrew their shift swap on %s", from, sched.Name),
			Text:  fmt.Sprintf("%s no longer asks you to be on call for %s, %s.", from, sched.Name, span),
		}
	}
	return s.notices.QueueNotice(ctx, tx, recipient, key, n)
}

func userNames(ctx context.Context, idb bun.IDB, ids ...int) (map[int]string, error) {
	var users []*db.User
	if err := idb.NewSelect().Model(&users).Where("id IN (?)", bun.In(ids)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	names := map[int]string{}
	for _, u := range users {
		names[u.ID] = u.Name
		if u.Name == "" {
			names[u.ID] = u.Email
		}
	}
	return names, nil
}

// describeSpan reads the span in the schedule's zone, as its people
// think of their shifts.
func describeSpan(sched *db.Schedule, sw *ShiftSwap) string {
	return "from " + inZone(sched, sw.Start) + " to " + inZone(sched, sw.End)
}

func inZone(sched *db.Schedule, t time.Time) string {
	loc, err := time.LoadLocation(sched.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	return t.In(loc).Format("Mon 2 Jan 2006 15:04 MST")
}
