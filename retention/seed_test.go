package retention_test

import (
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
)

// backlog is what seed stores, all of it due for pruning under the
// default settings.
type backlog struct {
	Messages, ClosedAlerts, Events int
}

// seed stores b, dated 400 days before the clock, in bulk: messages with
// bodies, closed alerts with two log lines each, and events.
func (w *world) seed(b backlog) {
	w.t.Helper()
	old := w.clock.Now().Add(-400 * day).UTC()
	body := []byte(fmt.Sprintf(`{"dedup_key":"old","summary":"%0512d"}`, 0))
	const chunk = 1000
	for done := 0; done < b.Messages; done += chunk {
		rows := make([]db.InboundMessage, min(chunk, b.Messages-done))
		for i := range rows {
			rows[i] = db.InboundMessage{IntegrationID: w.integ.ID, ReceivedAt: old.Add(time.Duration(done+i) * time.Millisecond),
				Headers: map[string]string{}, Body: body, Status: db.InboundIgnored}
		}
		if _, err := w.d.NewInsert().Model(&rows).Exec(w.ctx); err != nil {
			w.t.Fatalf("seed messages: %v", err)
		}
	}
	for done := 0; done < b.ClosedAlerts; done += chunk {
		alerts := make([]db.Alert, min(chunk, b.ClosedAlerts-done))
		for i := range alerts {
			at := old.Add(time.Duration(done+i) * time.Millisecond)
			alerts[i] = db.Alert{IntegrationID: &w.integ.ID, SourceID: fmt.Sprintf("old-%d", done+i), Status: db.AlertClosed,
				OpenedAt: at, LastSeenAt: at, ClosedAt: &at}
		}
		if _, err := w.d.NewInsert().Model(&alerts).Exec(w.ctx); err != nil {
			w.t.Fatalf("seed alerts: %v", err)
		}
		var log []db.AlertLog
		for _, a := range alerts {
			log = append(log, db.AlertLog{AlertID: a.ID, At: a.OpenedAt, Type: db.LogOpened}, db.AlertLog{AlertID: a.ID, At: *a.ClosedAt, Type: db.LogClosed})
		}
		if _, err := w.d.NewInsert().Model(&log).Exec(w.ctx); err != nil {
			w.t.Fatalf("seed alert log: %v", err)
		}
	}
	for done := 0; done < b.Events; done += chunk {
		evs := make([]events.Event, min(chunk, b.Events-done))
		for i := range evs {
			evs[i] = events.Event{Kind: events.KindAlert, Type: "OPENED", IntegrationID: w.integ.ID, At: old}
		}
		if _, err := w.d.NewInsert().Model(&evs).Exec(w.ctx); err != nil {
			w.t.Fatalf("seed events: %v", err)
		}
	}
}
