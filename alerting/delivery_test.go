package alerting_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/notifiers"
)

// recordingSender stands in for a provider: it keeps what it was asked to
// send and fails as scripted.
type recordingSender struct {
	mu    sync.Mutex
	calls int
	ids   int
	sent  []notifiers.Message
	// failures are returned by the next calls, in order; fail, when set,
	// by every call after them.
	failures []error
	fail     error
	// during, when set, runs in each call before it answers: what
	// happens while a message is out.
	during func(notifiers.Message)
}

func (r *recordingSender) Send(_ context.Context, msg notifiers.Message) (string, error) {
	if r.during != nil {
		r.during(msg)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if len(r.failures) > 0 {
		err := r.failures[0]
		r.failures = r.failures[1:]
		return "", err
	}
	if r.fail != nil {
		return "", r.fail
	}
	r.sent = append(r.sent, msg)
	r.ids++
	return fmt.Sprintf("SM%d", r.ids), nil
}

// take returns the messages sent so far and forgets them.
func (r *recordingSender) take() []notifiers.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := r.sent
	r.sent = nil
	return sent
}

func (r *recordingSender) callCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// deliveryFixture is an engine fixture whose SMS and email go to
// recording senders, with one on-call user.
type deliveryFixture struct {
	*engineFixture
	sms, email *recordingSender
	user       int
}

func newDeliveryFixture(t *testing.T, d *db.DB, channels ...db.ContactType) *deliveryFixture {
	f := &deliveryFixture{engineFixture: newEngineFixture(t, d), sms: &recordingSender{}, email: &recordingSender{}}
	f.svc.SetSenders(notifiers.Senders{db.ContactSMS: f.sms, db.ContactEmail: f.email})
	now := f.clock.Now()
	u := &db.User{Email: "alice@example.com", Name: "alice", Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
	f.insert(u)
	f.user = u.ID
	for _, channel := range channels {
		value := "+15551230001"
		if channel == db.ContactEmail {
			value = "alice@example.com"
		}
		cm := &db.ContactMethod{UserID: u.ID, Type: channel, Value: value, Verified: true, CreatedAt: now}
		f.insert(cm)
		f.insert(&db.NotificationRule{UserID: u.ID, ContactMethodID: cm.ID, CreatedAt: now})
	}
	f.policy(0, step(30, db.Target{Type: db.TargetUser, ID: u.ID}))
	return f
}

// run moves the clock to d after the start and runs what is due.
func (f *deliveryFixture) run(d time.Duration) {
	f.t.Helper()
	f.clock.mu.Lock()
	f.clock.now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(d)
	f.clock.mu.Unlock()
	if _, err := f.svc.RunDueJobs(f.ctx); err != nil {
		f.t.Fatalf("run due jobs at +%s: %v", d, err)
	}
}

// openAt opens an alert d after the start and runs what is due.
func (f *deliveryFixture) openAt(d time.Duration) int {
	f.t.Helper()
	f.clock.mu.Lock()
	f.clock.now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC).Add(d)
	f.clock.mu.Unlock()
	id := f.open()
	f.run(d)
	return id
}

func (f *deliveryFixture) notifications(channel db.ContactType) []*db.Notification {
	f.t.Helper()
	var notes []*db.Notification
	if err := f.d.NewSelect().Model(&notes).Where("channel = ?", channel).Order("alert_id", "id").Scan(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return notes
}

func (f *deliveryFixture) onlyNotification(channel db.ContactType) *db.Notification {
	f.t.Helper()
	notes := f.notifications(channel)
	if len(notes) != 1 {
		f.t.Fatalf("%d %s notifications, want 1", len(notes), channel)
	}
	return notes[0]
}

func (f *deliveryFixture) pendingJobs() []*db.AlertJob {
	f.t.Helper()
	var jobs []*db.AlertJob
	if err := f.d.NewSelect().Model(&jobs).Where("kind = 'notify'").Order("alert_id").Scan(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return jobs
}

// alertsIn lists the alerts a message covers, its own first.
func alertsIn(msg notifiers.Message) []int {
	ids := []int{msg.AlertID}
	for _, o := range msg.Others {
		ids = append(ids, o.AlertID)
	}
	return ids
}

func TestRetryAfterIsHonoured(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.failures = []error{&notifiers.RetryAfterError{Wait: 5 * time.Minute, Err: errors.New("twilio answered 429 Too Many Requests")}}
		f.openAt(0)
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != alerting.NotificationRetrying || note.Attempts != 1 || !strings.Contains(note.Error, "429") {
			t.Fatalf("after the 429: %+v", note)
		}
		// The backoff alone would have retried after 15 s.
		f.run(4 * time.Minute)
		if n := f.sms.callCount(); n != 1 {
			t.Fatalf("%d sends before the provider's Retry-After passed, want 1", n)
		}
		f.run(5 * time.Minute)
		if sent := f.sms.take(); len(sent) != 1 {
			t.Fatalf("%d messages once Retry-After passed, want 1", len(sent))
		}
		note = f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationSent || note.Attempts != 2 || note.ProviderID != "SM1" || note.Error != "" {
			t.Fatalf("after the retry: %+v", note)
		}
	})
}

func TestShortRetryAfterKeepsTheBackoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.failures = []error{
			errors.New("twilio answered 503"),
			&notifiers.RetryAfterError{Wait: time.Second, Err: errors.New("twilio answered 429")},
		}
		f.openAt(0)
		f.run(15 * time.Second) // second attempt; the backoff is now 30 s
		f.run(20 * time.Second)
		if n := f.sms.callCount(); n != 2 {
			t.Fatalf("%d sends: a Retry-After shorter than the backoff must not bring the retry forward", n)
		}
		f.run(45 * time.Second)
		if n := f.sms.callCount(); n != 3 || len(f.sms.take()) != 1 {
			t.Fatalf("%d sends, want the third to succeed at +45s", n)
		}
	})
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.fail = notifiers.Permanent(errors.New("twilio answered 400 Bad Request: error 21211: invalid 'To' phone number"))
		alertID := f.openAt(0)
		f.run(2 * time.Hour)
		if n := f.sms.callCount(); n != 1 {
			t.Fatalf("%d sends of a permanently failing notification, want 1", n)
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationFailed || note.Attempts != 1 || !strings.Contains(note.Error, "21211") {
			t.Fatalf("notification %+v", note)
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
		if timeline := strings.Join(f.timeline(alertID), "\n"); !strings.Contains(timeline, "Notification to alice by SMS failed") {
			t.Fatalf("timeline:\n%s", timeline)
		}
	})
}

func TestTemporaryFailureBacksOffUntilSent(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		timeout := errors.New("twilio: context deadline exceeded")
		f.sms.failures = []error{timeout, timeout, timeout}
		f.openAt(0)
		// Waits of 15 s, 30 s and 60 s: each retry comes exactly when its
		// backoff has passed and not a second earlier.
		for i, at := range []time.Duration{15 * time.Second, 45 * time.Second, 105 * time.Second} {
			f.run(at - time.Second)
			if n := f.sms.callCount(); n != i+1 {
				t.Fatalf("%d sends at +%s, want %d", n, at-time.Second, i+1)
			}
			f.run(at)
			if n := f.sms.callCount(); n != i+2 {
				t.Fatalf("%d sends at +%s, want %d", n, at, i+2)
			}
		}
		if sent := f.sms.take(); len(sent) != 1 {
			t.Fatalf("%d messages, want 1", len(sent))
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationSent || note.Attempts != 4 || note.ProviderID != "SM1" {
			t.Fatalf("notification %+v", note)
		}
	})
}

func TestTemporaryFailureGivesUpAfterMaxRetries(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.sms.fail = errors.New("twilio answered 503 Service Unavailable")
		f.openAt(0)
		for h := range 10 {
			f.run(time.Duration(h+1) * time.Hour)
		}
		if n := f.sms.callCount(); n != 5 {
			t.Fatalf("%d sends, want 5", n)
		}
		note := f.onlyNotification(db.ContactSMS)
		if note.Status != db.NotificationFailed || note.Attempts != 5 || !strings.Contains(note.Error, "503") {
			t.Fatalf("notification %+v", note)
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
	})
}

func TestRateLimitBundlesABurstIntoOneSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS, db.ContactEmail)
		first := f.openAt(0)
		second := f.openAt(2 * time.Second)
		third := f.openAt(4 * time.Second)

		if sent := f.sms.take(); len(sent) != 1 || sent[0].AlertID != first || len(sent[0].Others) != 0 {
			t.Fatalf("SMS during the burst: %+v, want one for alert %d alone", sent, first)
		}
		if sent := f.email.take(); len(sent) != 3 {
			t.Fatalf("%d emails during the burst, want 3: email is not rate limited", len(sent))
		}
		windowEnd := time.Date(2026, 3, 2, 9, 1, 0, 0, time.UTC)
		jobs := f.pendingJobs()
		if len(jobs) != 2 {
			t.Fatalf("%d notify jobs held back, want 2", len(jobs))
		}
		for _, job := range jobs {
			// Being held back is no failed attempt.
			if !job.RunAt.Equal(windowEnd) || job.Attempts != 0 || job.LastError != "" {
				t.Fatalf("held back job %+v, want it due at %s with no attempt counted", job, windowEnd)
			}
		}

		f.run(time.Minute - time.Second)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d SMS inside the window", len(sent))
		}
		f.run(time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS when the window ended, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, third}) {
			t.Fatalf("the bundled SMS covers alerts %v, want %v", covered, []int{second, third})
		}
		if sent[0].AckURL == "" || sent[0].Destination != "+15551230001" {
			t.Fatalf("bundled message %+v", sent[0])
		}

		notes := f.notifications(db.ContactSMS)
		if len(notes) != 3 {
			t.Fatalf("%d SMS notifications, want one per alert", len(notes))
		}
		for i, want := range []struct {
			alert    int
			provider string
		}{{first, "SM1"}, {second, "SM2"}, {third, "SM2"}} {
			n := notes[i]
			if n.AlertID != want.alert || n.Status != db.NotificationSent || n.ProviderID != want.provider || n.Attempts != 1 {
				t.Fatalf("notification %d: %+v, want alert %d sent as %s", i, n, want.alert, want.provider)
			}
		}
		if jobs := f.pendingJobs(); len(jobs) != 0 {
			t.Fatalf("%d notify jobs left", len(jobs))
		}
		timeline := strings.Join(f.timeline(third), "\n")
		for _, want := range []string{"Notification to alice by SMS held back until 09:01:00 UTC", "Notified alice by SMS (one message with 1 other", "Notified alice by EMAIL"} {
			if !strings.Contains(timeline, want) {
				t.Fatalf("timeline lacks %q:\n%s", want, timeline)
			}
		}

		// The next alert is a minute after the bundle: the window runs from
		// the bundle, not from the first SMS.
		fourth := f.openAt(time.Minute + 30*time.Second)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d SMS within a minute of the bundle", len(sent))
		}
		f.run(2 * time.Minute)
		if sent := f.sms.take(); len(sent) != 1 || !slices.Equal(alertsIn(sent[0]), []int{fourth}) {
			t.Fatalf("SMS after the bundle's window: %+v", sent)
		}
	})
}

// Alerts that come due together need not wait for the window at all: the
// first message carries them all.
func TestBurstAtOneInstantSendsOneSMS(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		var opened []int
		for range 4 {
			opened = append(opened, f.open())
		}
		f.run(0)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS for a burst at one instant, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, opened) {
			t.Fatalf("alerts covered %v, want %v", covered, opened)
		}
		f.run(time.Hour)
		if sent := f.sms.take(); len(sent) != 0 {
			t.Fatalf("%d more SMS later", len(sent))
		}
		if notes := f.notifications(db.ContactSMS); len(notes) != 4 {
			t.Fatalf("%d SMS notifications, want 4", len(notes))
		}
	})
}

func TestRateLimitZeroDisables(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.svc.SetRateLimits(map[db.ContactType]time.Duration{db.ContactSMS: 0})
		for i := range 3 {
			f.openAt(time.Duration(i) * time.Second)
		}
		sent := f.sms.take()
		if len(sent) != 3 {
			t.Fatalf("%d SMS without a rate limit, want 3", len(sent))
		}
		for _, msg := range sent {
			if len(msg.Others) != 0 {
				t.Fatalf("message bundled without a rate limit: %+v", msg)
			}
		}
	})
}

func TestRateLimitIsConfigurable(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS, db.ContactEmail)
		f.svc.SetRateLimits(map[db.ContactType]time.Duration{db.ContactSMS: 5 * time.Minute, db.ContactEmail: time.Minute})
		f.openAt(0)
		f.openAt(time.Second)
		if sms, email := len(f.sms.take()), len(f.email.take()); sms != 1 || email != 1 {
			t.Fatalf("%d SMS and %d emails at once, want 1 each", sms, email)
		}
		f.run(time.Minute)
		if sms, email := len(f.sms.take()), len(f.email.take()); sms != 0 || email != 1 {
			t.Fatalf("%d SMS and %d emails after a minute, want 0 and 1", sms, email)
		}
		f.run(5 * time.Minute)
		if sms := len(f.sms.take()); sms != 1 {
			t.Fatalf("%d SMS after five minutes, want 1", sms)
		}
	})
}

func TestAlertAcknowledgedWhileHeldBackIsLeftOutOfTheBundle(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.openAt(0)
		second := f.openAt(time.Second)
		third := f.openAt(2 * time.Second)
		fourth := f.openAt(3 * time.Second)
		f.sms.take()
		if _, err := f.svc.Acknowledge(f.ctx, third, f.user); err != nil {
			t.Fatal(err)
		}
		f.run(time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, fourth}) {
			t.Fatalf("bundle covers %v, want %v without the acknowledged %d", covered, []int{second, fourth}, third)
		}
		for _, n := range f.notifications(db.ContactSMS) {
			if n.AlertID == third {
				t.Fatalf("the acknowledged alert got a notification: %+v", n)
			}
		}
	})
}

func TestBundleFailingTemporarilyIsRetriedWhole(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newDeliveryFixture(t, d, db.ContactSMS)
		f.openAt(0)
		second := f.openAt(time.Second)
		third := f.openAt(2 * time.Second)
		f.sms.take()
		f.sms.failures = []error{&notifiers.RetryAfterError{Wait: 2 * time.Minute, Err: errors.New("twilio answered 429")}}
		f.run(time.Minute)
		for _, n := range f.notifications(db.ContactSMS)[1:] {
			if n.Status != alerting.NotificationRetrying || n.Attempts != 1 {
				t.Fatalf("after the failed bundle: %+v", n)
			}
		}
		f.run(3*time.Minute - time.Second)
		if n := f.sms.callCount(); n != 2 {
			t.Fatalf("%d sends before Retry-After passed, want 2", n)
		}
		f.run(3 * time.Minute)
		sent := f.sms.take()
		if len(sent) != 1 {
			t.Fatalf("%d SMS on the retry, want 1", len(sent))
		}
		covered := alertsIn(sent[0])
		slices.Sort(covered)
		if !slices.Equal(covered, []int{second, third}) {
			t.Fatalf("the retried bundle covers %v", covered)
		}
		for _, n := range f.notifications(db.ContactSMS)[1:] {
			if n.Status != db.NotificationSent || n.Attempts != 2 || n.ProviderID != "SM2" {
				t.Fatalf("after the retried bundle: %+v", n)
			}
		}
	})
}

// A message out when its alert is closed has still been sent: the
// delivery log must say so, not stay SENDING with its job gone.
func TestSendUnderWayWhenTheAlertClosesIsRecorded(t *testing.T) {
	for _, fail := range []error{nil, errors.New("connection reset")} {
		t.Run(fmt.Sprintf("error %v", fail), func(t *testing.T) {
			dbtest.Each(t, func(t *testing.T, d *db.DB) {
				f := newDeliveryFixture(t, d, db.ContactEmail)
				f.email.fail = fail
				f.email.during = func(msg notifiers.Message) {
					if _, err := f.svc.Close(f.ctx, msg.AlertID, f.user); err != nil {
						t.Errorf("close alert %d: %v", msg.AlertID, err)
					}
				}
				alertID := f.openAt(0)
				f.run(2 * time.Hour)
				want, entry := db.NotificationSent, "Notified alice by EMAIL"
				if fail != nil {
					want, entry = db.NotificationFailed, "Notification to alice by EMAIL failed"
				}
				note := f.onlyNotification(db.ContactEmail)
				if note.Status != want || note.Attempts != 1 {
					t.Fatalf("notification %+v, want %s after one attempt", note, want)
				}
				if n := f.email.callCount(); n != 1 {
					t.Fatalf("%d sends, want 1", n)
				}
				if jobs := f.pendingJobs(); len(jobs) != 0 {
					t.Fatalf("%d notify jobs left", len(jobs))
				}
				if timeline := strings.Join(f.timeline(alertID), "\n"); !strings.Contains(timeline, entry) {
					t.Fatalf("timeline, want %q:\n%s", entry, timeline)
				}
			})
		})
	}
}
