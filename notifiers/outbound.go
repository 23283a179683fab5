package notifiers

import (
	"net/http"

	"github.com/klaxonhq/klaxon/egress"
)

// outboundClient is the HTTP client of every channel whose destination a
// user enters (webhooks, Slack, Teams, ntfy, Web Push): it reaches only
// what guard allows, nil meaning public addresses only, and follows no
// redirect. Twilio and SMTP talk to endpoints the operator configured
// and keep their plain clients.
func outboundClient(guard *egress.Guard) *http.Client {
	if guard == nil {
		guard = egress.New(nil, nil)
	}
	return guard.Client(roundTripTimeout)
}
