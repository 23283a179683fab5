package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
)

// The drop-in APIs answer in the shape of the API they imitate, but they
// store and refuse like the webhook route (see handleWebhook): one Ingest,
// one rate limit, 2xx only once the message is committed.

// ingestRefusal is why Ingest stored nothing, sorted the way every
// inbound route answers it.
type ingestRefusal int

const (
	refusedNone ingestRefusal = iota
	refusedRateLimited
	refusedUnknownKey
	refusedDisabled
	refusedUnavailable
	refusedFailed
)

// refusalOf sorts an error of Ingest, counts it, and logs what the
// sender is not told. retryAfter is the seconds to wait when rate
// limited, rounded up so that a sender waiting them finds the wait over.
func (s *Server) refusalOf(r *http.Request, err error) (refusal ingestRefusal, message string, retryAfter int) {
	var rateErr *db.RateLimitError
	switch {
	case err == nil:
		return refusedNone, "", 0
	case errors.As(err, &rateErr):
		s.metrics.webhookRefused("rate_limited")
		return refusedRateLimited, rateErr.Error(), rateErr.RetryAfterSeconds()
	case errors.Is(err, alerting.ErrUnknownToken):
		s.metrics.webhookRefused("unknown_token")
		return refusedUnknownKey, "", 0
	case errors.Is(err, alerting.ErrIntegrationDisabled):
		s.metrics.webhookRefused("disabled")
		return refusedDisabled, "", 0
	case unavailable(err):
		s.metrics.webhookRefused("unavailable")
		s.log.WarnContext(r.Context(), "drop-in event not stored: database unavailable", "path", r.URL.Path, "err", err)
		return refusedUnavailable, "", 0
	default:
		s.log.ErrorContext(r.Context(), "drop-in event not stored", "path", r.URL.Path, "err", err)
		return refusedFailed, "", 0
	}
}

// keptHeadersOf is the request's headers worth storing with its message.
func keptHeadersOf(r *http.Request) map[string]string {
	headers := make(map[string]string, len(keptHeaders))
	for _, name := range keptHeaders {
		if v := r.Header.Get(name); v != "" {
			headers[name] = v
		}
	}
	return headers
}

// setRetryAfter sets the Retry-After header for a refusal that asks the
// sender to come back.
func setRetryAfter(w http.ResponseWriter, refusal ingestRefusal, seconds int) {
	switch refusal {
	case refusedRateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(seconds))
	case refusedUnavailable:
		w.Header().Set("Retry-After", retryAfterUnavailable)
	}
}
