package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/notifiers"
)

// A notice tells a person something that is not an alert: a shift swap
// asked of them, or the answer to theirs. The configuration package it
// comes from queues it in the transaction of its change (QueueNotice,
// which schedules.Notices names), as one job per contact method the
// person is paged on, so that a change that rolls back tells nobody and
// one that commits is told even across a restart. Each job is one
// attempt at a time, retried after a temporary failure like a
// workflow's request.

const jobNotice = "notice"

// noticeRetries are the waits after a failed attempt of a notice before
// the next; after the last it is given up.
var noticeRetries = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

type noticeArgs struct {
	UserID          int              `json:"userId"`
	ContactMethodID int              `json:"contactMethodId"`
	Notice          notifiers.Notice `json:"notice"`
}

// QueueNotice queues notice for the user on each contact method of
// theirs that has a notification rule and can carry a notice (see
// notifiers.NoticeChannel), inside tx. Link URLs are paths under the
// public URL. A person with no such method is told nothing, which is
// logged.
//
// The link tokens stay in the job's arguments until it is done: the
// job is where they are sent from.
func (s *Service) QueueNotice(ctx context.Context, tx bun.Tx, userID int, key string, notice notifiers.Notice) error {
	rules, err := s.config.Contacts.RulesToQueue(ctx, tx, userID)
	if err != nil {
		return err
	}
	notice.Links = append([]notifiers.NoticeLink(nil), notice.Links...)
	for i, l := range notice.Links {
		if strings.HasPrefix(l.URL, "/") {
			notice.Links[i].URL = s.publicURL + l.URL
		}
	}
	now := s.clock()
	queued := map[int]bool{}
	for _, r := range rules {
		if queued[r.ContactMethodID] || !notifiers.NoticeChannel(r.Type) {
			continue
		}
		queued[r.ContactMethodID] = true
		args := noticeArgs{UserID: userID, ContactMethodID: r.ContactMethodID, Notice: notice}
		if err := enqueue(ctx, tx, jobNotice, 0, now, fmt.Sprintf("notice:%s:%d", key, r.ContactMethodID), args, now); err != nil {
			return err
		}
	}
	if len(queued) == 0 {
		s.log.InfoContext(ctx, "notice not sent: no email or SMS contact method with a notification rule", "user", userID, "notice", key)
	}
	return nil
}

// sendNotice makes one attempt of a notice and records it.
func (s *Service) sendNotice(ctx context.Context, job *db.AlertJob, args noticeArgs) error {
	method, err := s.config.Contacts.ContactMethodByID(ctx, s.db, args.ContactMethodID)
	if errors.Is(err, db.ErrNotFound) || (err == nil && (method.Disabled || (method.Type.NeedsVerification() && !method.Verified))) {
		s.log.InfoContext(ctx, "notice not sent: its contact method is gone, disabled or unverified", "job", job.ID, "contact_method", args.ContactMethodID)
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error { return s.finishJob(ctx, tx, job) })
	}
	if err != nil {
		return err
	}
	msg := notifiers.Message{Notice: &args.Notice, Destination: method.Value, UserID: args.UserID}
	// From here the notice may be out: its record is not cut short.
	ctx = context.WithoutCancel(ctx)
	sendCtx, cancel := context.WithTimeout(ctx, notifiers.SendTimeout)
	_, sendErr := s.senders.Send(sendCtx, method.Type, msg)
	cancel()
	d := &unrecorded{job: job, recordTx: func(ctx context.Context, tx bun.Tx) error {
		return s.recordNoticeAttempt(ctx, tx, job, method, sendErr)
	}}
	err = db.Classify(s.record(ctx, d))
	if errors.Is(err, db.ErrUnavailable) {
		// Sent: kept with its outcome rather than sent again (see
		// runWorkflow).
		s.stranded.Lock()
		s.stranded.deliveries = append(s.stranded.deliveries, d)
		s.stranded.Unlock()
		return fmt.Errorf("%w: %w", errSentUnrecorded, err)
	}
	return err
}

// recordNoticeAttempt finishes the job, or puts it off to the next
// attempt after a temporary failure.
func (s *Service) recordNoticeAttempt(ctx context.Context, tx bun.Tx, job *db.AlertJob, method *db.ContactMethod, sendErr error) error {
	if sendErr == nil {
		return s.finishJob(ctx, tx, job)
	}
	if notifiers.IsPermanent(sendErr) || job.Attempts > len(noticeRetries) {
		s.log.WarnContext(ctx, "notice given up", "job", job.ID, "contact_method", method.ID, "attempts", job.Attempts, "err", sendErr)
		return s.finishJob(ctx, tx, job)
	}
	wait := noticeRetries[max(job.Attempts, 1)-1]
	if w, ok := notifiers.RetryAfter(sendErr); ok && w > wait {
		wait = w
	}
	s.log.InfoContext(ctx, "notice failed; retrying", "job", job.ID, "contact_method", method.ID, "attempt", job.Attempts, "in", wait, "err", sendErr)
	return s.retryJob(ctx, tx, job, s.clock().Add(wait), sendErr)
}

func decodeNoticeArgs(job *db.AlertJob) (noticeArgs, error) {
	var args noticeArgs
	if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
		return args, fmt.Errorf("decode %s job: %w", jobNotice, err)
	}
	return args, nil
}
