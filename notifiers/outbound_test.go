package notifiers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Redirects are not followed: the 3xx is the answer, and a failed send
// with its status, so a receiver cannot point Klaxon elsewhere.
func TestSendersFollowNoRedirect(t *testing.T) {
	var reached bool
	inner := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	t.Cleanup(inner.Close)
	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, inner.URL+"/next", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(outer.Close)
	for name, sender := range map[string]Sender{"webhook": NewWebhook(localSinks), "slack": NewSlack(localSinks), "teams": NewTeams(localSinks)} {
		_, err := sender.Send(context.Background(), testMessage(outer.URL+"/hook"))
		if err == nil || !strings.Contains(err.Error(), "307") || !IsPermanent(err) {
			t.Errorf("%s: a redirect gave %v", name, err)
		}
	}
	if reached {
		t.Fatal("a redirect was followed")
	}
}
