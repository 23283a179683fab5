package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// writeJSON answers with a JSON body; encoding errors can only be a
// client gone away, so they are not reported.
func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

// writeError answers with {"error": message}.
func writeError(w http.ResponseWriter, status int, message string) {
	writeJSON(w, status, map[string]string{"error": message})
}

// unavailable reports an error caused by the database being away (see
// db.ErrUnavailable), which a client should retry rather than report.
func unavailable(err error) bool {
	return errors.Is(db.Classify(err), db.ErrUnavailable)
}

// retryAfterUnavailable is the Retry-After value, in seconds, sent with
// every answer refused because the database is away.
var retryAfterUnavailable = strconv.Itoa(int(db.UnavailableRetryAfter / time.Second))

// writeUnavailable answers 503 with Retry-After: nothing was stored, and
// the same request may be sent again once the database is back. A
// sender that gets a 500 may treat it as a bug on our side and drop the
// message; 503 with Retry-After is the retry signal senders and load
// balancers act on.
func writeUnavailable(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfterUnavailable)
	writeError(w, http.StatusServiceUnavailable, "the database is unavailable; nothing was stored, retry later")
}
