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
	client := guard.Client(roundTripTimeout)
	if t, ok := client.Transport.(*http.Transport); ok {
		// The engine sends side by side, and in a storm mostly to the same
		// few receivers: with net/http's default of two idle connections
		// per host, most sends would open a new connection (and leave one
		// in TIME_WAIT) instead of reusing one.
		t.MaxIdleConnsPerHost = maxIdlePerHost
	}
	return client
}

// maxIdlePerHost is how many connections to one receiver are kept open
// between sends: as many as the engine sends at once (alerting's job
// workers).
const maxIdlePerHost = 16
