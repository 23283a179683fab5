package server

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// keptHeaders are the request headers stored with each inbound message:
// enough to trace a sender and check a signature later, nothing that
// carries a credential of ours.
var keptHeaders = append([]string{
	"Content-Type", "User-Agent", "X-Forwarded-For", "X-Real-Ip", "X-Request-Id",
}, rules.SignatureHeaderNames...)

type webhookReply struct {
	MessageID string  `json:"messageId"`
	Status    string  `json:"status"`
	AlertID   *string `json:"alertId"`
	Error     string  `json:"error,omitempty"`
}

// handleWebhook answers 2xx only once the message is committed. A body
// that is not JSON is still stored (as MAPPING_FAILED) and answered 400,
// and one with a bad signature is stored as REFUSED and answered 401, so
// the sender learns of it and the operator can see it. What is refused
// before the integration is known (an unknown token, a disabled
// integration, a body over the limit, a rate limit) stores nothing. The
// bad-input matrix in docs/SECURITY.md lists every case.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.webhookRefused("too_large")
			writeError(w, http.StatusRequestEntityTooLarge, "body exceeds "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	headers := make(map[string]string, len(keptHeaders))
	for _, name := range keptHeaders {
		if v := r.Header.Get(name); v != "" {
			headers[name] = v
		}
	}
	res, err := s.alerting.Ingest(r.Context(), alerting.Inbound{
		Token:      r.PathValue("token"),
		Body:       body,
		Headers:    headers,
		RemoteAddr: s.clientAddr(r),
	})
	var rateErr *db.RateLimitError
	switch {
	case errors.As(err, &rateErr):
		s.metrics.webhookRefused("rate_limited")
		// Rounded up: a sender waiting the whole seconds it is told must
		// find the wait over.
		w.Header().Set("Retry-After", strconv.Itoa(rateErr.RetryAfterSeconds()))
		writeError(w, http.StatusTooManyRequests, rateErr.Error())
		return
	case errors.Is(err, alerting.ErrUnknownToken):
		s.metrics.webhookRefused("unknown_token")
		writeError(w, http.StatusNotFound, "no integration has this URL")
		return
	case errors.Is(err, alerting.ErrIntegrationDisabled):
		s.metrics.webhookRefused("disabled")
		writeError(w, http.StatusForbidden, "this integration is disabled")
		return
	case unavailable(err):
		s.metrics.webhookRefused("unavailable")
		s.log.WarnContext(r.Context(), "webhook not stored: database unavailable", "err", err)
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "webhook not stored", "err", err)
		writeError(w, http.StatusInternalServerError, "the message could not be stored; retry later")
		return
	}
	s.metrics.webhookStored(res.Status)
	reply := webhookReply{MessageID: strconv.Itoa(res.MessageID), Status: string(res.Status)}
	if res.AlertID != nil {
		id := strconv.Itoa(*res.AlertID)
		reply.AlertID = &id
	}
	status := http.StatusOK
	switch res.Status {
	case db.InboundMappingFailed:
		status, reply.Error = http.StatusBadRequest, res.Detail
	case db.InboundRefused:
		status, reply.Error = http.StatusUnauthorized, res.Detail
	}
	writeJSON(w, status, reply)
}
