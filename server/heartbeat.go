package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/klaxonhq/klaxon/db"
)

// maxPulseBody caps what is read of a pulse's body, which is ignored:
// jobs may post their output, but none of it is kept.
const maxPulseBody = 64 << 10

type pulseReply struct {
	Status string `json:"status"`
}

// handlePulse takes a pulse of the heartbeat monitor whose token is in
// the path, GET or POST; the token is the only credential.
func (s *Server) handlePulse(w http.ResponseWriter, r *http.Request) {
	store := s.resolver.HeartbeatStore
	if store == nil {
		writeError(w, http.StatusNotFound, "no heartbeat monitor has this URL")
		return
	}
	if r.Body != nil {
		_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxPulseBody))
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "a pulse body may be at most "+strconv.Itoa(maxPulseBody)+" bytes; it is ignored anyway")
			return
		}
	}
	m, err := store.Pulse(r.Context(), r.PathValue("token"))
	var rateErr *db.RateLimitError
	switch {
	case errors.As(err, &rateErr):
		w.Header().Set("Retry-After", strconv.Itoa(rateErr.RetryAfterSeconds()))
		writeError(w, http.StatusTooManyRequests, rateErr.Error())
		return
	case errors.Is(err, db.ErrNotFound):
		writeError(w, http.StatusNotFound, "no heartbeat monitor has this URL")
		return
	case unavailable(err):
		s.log.WarnContext(r.Context(), "pulse not recorded: database unavailable", "err", err)
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "pulse not recorded", "err", err)
		writeError(w, http.StatusInternalServerError, "the pulse could not be recorded; retry later")
		return
	}
	writeJSON(w, http.StatusOK, pulseReply{Status: string(m.Status)})
}
