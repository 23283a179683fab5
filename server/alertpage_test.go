package server_test

import (
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// A page of alerts asking for each alert's integration reads the
// integrations once for the page, not once per alert, and each alert
// still gets its own.
func TestAlertPageReadsItsIntegrationsOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integs := []integration{h.createIntegration("DETECTIFY"), h.createIntegration("DETECTIFY")}
		owner := map[string]string{}
		for i := range 8 {
			integ := integs[i%2]
			owner[h.postWebhook(integ.Token(t), finding(h.unique("f"), "high")).alert()] = integ.ID
		}
		reads := &queryCounter{match: `FROM "integrations"`}
		d.AddQueryHook(reads)
		var data struct {
			Alerts struct {
				Nodes []struct {
					ID          string `json:"id"`
					Integration struct {
						ID string `json:"id"`
					} `json:"integration"`
				} `json:"nodes"`
			} `json:"alerts"`
		}
		h.mustGQL(h.admin.Token, `{ alerts(first: 50) { nodes { id integration { id } } } }`, nil, &data)
		if len(data.Alerts.Nodes) != 8 {
			t.Fatalf("%d alerts listed, want 8", len(data.Alerts.Nodes))
		}
		for _, a := range data.Alerts.Nodes {
			if a.Integration.ID != owner[a.ID] {
				t.Errorf("alert %s lists integration %s, want %s", a.ID, a.Integration.ID, owner[a.ID])
			}
		}
		if n := reads.n.Load(); n > 2 {
			t.Errorf("a page of 8 alerts read the integrations %d times; want one read for the page (and at most one for the caller's rights)", n)
		}
	})
}
