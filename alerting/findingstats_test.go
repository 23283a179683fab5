package alerting_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

func statsLine(s *alerting.SeverityStats) string {
	median := "none"
	if s.MedianSecondsToClose != nil {
		median = fmt.Sprint(*s.MedianSecondsToClose)
	}
	return fmt.Sprintf("%s opened %d closed %d regressions %d overdue %d median %s", s.Severity, s.Opened, s.Closed, s.Regressions, s.Overdue, median)
}

func TestFindingStats(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newEngineFixture(t, d)
		alice := f.user("alice")
		f.remediation(alice, 0)
		start := f.clock.Now()
		const hour, dayMinutes = 60, 24 * 60
		f.send(1, "high")
		f.at(hour)
		f.send(2, "high")
		f.at(2 * hour)
		f.send(3, "critical")
		f.at(dayMinutes)
		f.send(1, "low")
		f.at(2*dayMinutes + 2*hour) // finding 3 is overdue
		f.at(3 * dayMinutes)
		f.send(2, "low")
		f.at(4 * dayMinutes)
		if res := f.send(1, "high"); !f.alert(*res.AlertID).Regression() {
			t.Fatal("finding 1 came back but is no regression")
		}
		f.at(5 * dayMinutes)
		f.send(3, "low")
		f.at(6 * dayMinutes)
		f.send(4, "medium") // after the ranges below

		stats := func(from, to time.Time) []string {
			t.Helper()
			got, err := f.svc.FindingStats(f.ctx, f.integ.ID, from, to)
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, s := range got.Severities {
				lines = append(lines, statsLine(s))
			}
			return lines
		}
		check := func(got []string, want ...string) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("stats\n got %q\nwant %q", got, want)
			}
		}
		check(stats(start, start.Add(6*day)),
			"critical opened 1 closed 1 regressions 0 overdue 1 median 424800",
			// Closed after a day, and after three days less an hour.
			"high opened 3 closed 2 regressions 1 overdue 0 median 171000")
		check(stats(start.Add(day+time.Minute), start.Add(6*day)),
			"critical opened 0 closed 1 regressions 0 overdue 1 median 424800",
			"high opened 1 closed 1 regressions 1 overdue 0 median 255600")
		check(stats(start.Add(5*day+time.Minute), start.Add(6*day)))
		check(stats(start.Add(6*day), start.Add(7*day)), "medium opened 1 closed 0 regressions 0 overdue 0 median none")

		_, err := f.svc.FindingStats(f.ctx, f.integ.ID, start, start)
		wantFieldError(t, err, "to")
		if _, err := f.svc.FindingStats(f.ctx, f.integ.ID+100, start, start.Add(day)); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("stats of a missing integration: %v", err)
		}
	})
}
