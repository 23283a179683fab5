package alerting_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
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
	f.channels.SetSenders(notifiers.Senders{db.ContactSMS: f.sms, db.ContactEmail: f.email})
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
