package server

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strings"

	"github.com/klaxonhq/klaxon/notifiers"
)

// twilioForm reads and authenticates a request from Twilio: its
// X-Twilio-Signature must match the form and the public URL Twilio was
// given. It answers the request itself when it returns false.
func (s *Server) twilioForm(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.TwilioAuthToken == "" {
		writeError(w, http.StatusNotFound, "Twilio is not configured")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "body is not a form")
		return false
	}
	fullURL := strings.TrimRight(s.cfg.PublicURL, "/") + r.URL.RequestURI()
	if !notifiers.VerifyTwilioSignature(s.cfg.TwilioAuthToken, fullURL, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
		s.log.WarnContext(r.Context(), "refused a Twilio request with a bad signature", "path", r.URL.Path)
		writeError(w, http.StatusUnauthorized, "bad or missing X-Twilio-Signature")
		return false
	}
	return true
}

// handleTwilioSMS answers a text sent to Klaxon's number, as TwiML.
func (s *Server) handleTwilioSMS(w http.ResponseWriter, r *http.Request) {
	if !s.twilioForm(w, r) {
		return
	}
	reply, err := s.alerting.ReplyToSMS(r.Context(), r.PostForm.Get("From"), r.PostForm.Get("Body"))
	if err != nil {
		s.log.ErrorContext(r.Context(), "SMS reply", "err", err)
		reply = "Something went wrong; nothing was changed."
	}
	var text bytes.Buffer
	xml.EscapeText(&text, []byte(reply))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response><Message>` + text.String() + `</Message></Response>`))
}

// handleTwilioStatus records Twilio's final word on a message or call.
func (s *Server) handleTwilioStatus(w http.ResponseWriter, r *http.Request) {
	if !s.twilioForm(w, r) {
		return
	}
	sid, status := r.PostForm.Get("MessageSid"), r.PostForm.Get("MessageStatus")
	if sid == "" {
		sid, status = r.PostForm.Get("CallSid"), r.PostForm.Get("CallStatus")
	}
	var delivered bool
	switch status {
	case "delivered", "completed":
		delivered = true
	case "failed", "undelivered", "busy", "no-answer", "canceled":
	default:
		w.WriteHeader(http.StatusNoContent) // not final yet
		return
	}
	reason := status
	if code := r.PostForm.Get("ErrorCode"); code != "" {
		reason += " (Twilio error " + code + ")"
	}
	if err := s.alerting.RecordDeliveryStatus(r.Context(), sid, delivered, reason); err != nil {
		s.log.ErrorContext(r.Context(), "Twilio status callback", "err", err)
		writeError(w, http.StatusInternalServerError, "could not record the status")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
