package server_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

func TestPagination(t *testing.T) {
	t.Parallel()
	const n = 7
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		token := h.createIntegration("DETECTIFY").Token(t)
		var opened []string
		for i := range n {
			r := h.postWebhook(token, finding("page-"+strconv.Itoa(i), "high"))
			if r.Status != "MAPPED_OPENED" {
				t.Fatalf("post %d: %s", i, r.Raw)
			}
			opened = append(opened, r.alert())
		}
		// Newest first.
		slices.Reverse(opened)

		type page struct {
			TotalCount int `json:"totalCount"`
			Nodes      []struct {
				ID string `json:"id"`
			} `json:"nodes"`
			PageInfo struct {
				EndCursor   *string `json:"endCursor"`
				HasNextPage bool    `json:"hasNextPage"`
			} `json:"pageInfo"`
		}
		walk := func(t *testing.T, field, query string) []string {
			h := h.with(t)
			var seen []string
			var after *string
			for pages := 1; ; pages++ {
				if pages > n {
					t.Fatalf("more than %d pages of 2", n)
				}
				var data map[string]page
				h.mustGQL(h.admin.Token, query, map[string]any{"after": after}, &data)
				p := data[field]
				if p.TotalCount != n {
					t.Errorf("page %d: totalCount %d, want %d", pages, p.TotalCount, n)
				}
				if len(p.Nodes) == 0 || len(p.Nodes) > 2 {
					t.Fatalf("page %d has %d nodes", pages, len(p.Nodes))
				}
				for _, node := range p.Nodes {
					seen = append(seen, node.ID)
				}
				if !p.PageInfo.HasNextPage {
					if pages != (n+1)/2 {
						t.Errorf("%d pages, want %d", pages, (n+1)/2)
					}
					return seen
				}
				if p.PageInfo.EndCursor == nil {
					t.Fatalf("page %d has a next page but no endCursor", pages)
				}
				after = p.PageInfo.EndCursor
			}
		}
		t.Run("alerts", func(t *testing.T) {
			seen := walk(t, "alerts", `query($after: String) { alerts(first: 2, after: $after) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } }`)
			if !slices.Equal(seen, opened) {
				t.Errorf("pages gave %v, want each alert once, newest first: %v", seen, opened)
			}
		})
		t.Run("inboundMessages", func(t *testing.T) {
			seen := walk(t, "inboundMessages", `query($after: String) { inboundMessages(first: 2, after: $after) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } }`)
			unique := slices.Compact(slices.Clone(seen))
			if len(seen) != n || len(unique) != n || !slices.IsSortedFunc(seen, func(a, b string) int {
				return mustAtoi(t, b) - mustAtoi(t, a)
			}) {
				t.Errorf("pages gave %v, want %d distinct messages, newest first", seen, n)
			}
		})
		t.Run("alert messages", func(t *testing.T) {
			hh := h.with(t)
			// Two more for the newest alert's finding: three messages on it.
			for range 2 {
				hh.postWebhook(token, finding("page-"+strconv.Itoa(n-1), "high"))
			}
			var data struct {
				Alert struct {
					AppendCount int  `json:"appendCount"`
					Messages    page `json:"messages"`
				} `json:"alert"`
			}
			hh.mustGQL(hh.admin.Token, `query($id: ID!) { alert(id: $id) { appendCount messages(first: 2) {
				totalCount nodes { id } pageInfo { endCursor hasNextPage } } } }`, map[string]any{"id": opened[0]}, &data)
			m := data.Alert.Messages
			if data.Alert.AppendCount != 2 || m.TotalCount != 3 || len(m.Nodes) != 2 || !m.PageInfo.HasNextPage {
				t.Errorf("alert %s: %+v", opened[0], data.Alert)
			}
		})
	})
}
