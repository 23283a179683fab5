package server

import (
	"bytes"
	"encoding/xml"
	"errors"
	"net/http"
	"strings"

	"github.com/klaxonhq/klaxon/alerting"
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
	if unavailable(err) {
		s.log.WarnContext(r.Context(), "SMS reply: database unavailable", "err", err)
		writeUnavailable(w)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "SMS reply", "err", err)
		reply = "Something went wrong; nothing was changed."
	}
	writeTwiML(w, "<Message>"+xmlText(reply)+"</Message>")
}

// handleTwilioVoice acts on the key pressed during a voice page; the
// call's own TwiML names this route as its Gather action, so Twilio
// posts the digits here together with the call's SID.
func (s *Server) handleTwilioVoice(w http.ResponseWriter, r *http.Request) {
	if !s.twilioForm(w, r) {
		return
	}
	say, err := s.alerting.AnswerCall(r.Context(), r.PostForm.Get("CallSid"), r.PostForm.Get("Digits"))
	switch {
	case errors.Is(err, alerting.ErrCallKeyUnknown) && r.URL.Query().Get("again") == "":
		// One more chance: a fumbled key should not end the call, but
		// a callee who keeps missing should not be kept on the line.
		action := strings.TrimRight(s.cfg.PublicURL, "/") + "/twilio/voice?again=1"
		writeTwiML(w, `<Gather numDigits="1" action="`+xmlText(action)+`" method="POST" timeout="10"><Say>`+
			xmlText("That key does nothing. "+alerting.CallOptions)+`</Say></Gather><Say>No input received; nothing was changed. Goodbye.</Say>`)
		return
	case errors.Is(err, alerting.ErrCallKeyUnknown):
		say = "That key does nothing either; nothing was changed. Goodbye."
	case unavailable(err):
		s.log.WarnContext(r.Context(), "voice call answer: database unavailable", "err", err)
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "voice call answer", "err", err)
		say = "Something went wrong; nothing was changed."
	}
	writeTwiML(w, "<Say>"+xmlText(say)+"</Say>")
}

// writeTwiML answers Twilio with the given verbs.
func writeTwiML(w http.ResponseWriter, verbs string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Response>` + verbs + `</Response>`))
}

// xmlText escapes s for use as XML text or an attribute value.
func xmlText(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
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
	err := s.alerting.RecordDeliveryStatus(r.Context(), sid, delivered, reason)
	if unavailable(err) {
		s.log.WarnContext(r.Context(), "Twilio status callback: database unavailable", "err", err)
		writeUnavailable(w)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "Twilio status callback", "err", err)
		writeError(w, http.StatusInternalServerError, "could not record the status")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
