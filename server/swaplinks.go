package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/schedules"
)

// A shift swap's links, like the alert action links, open a page whose
// button answers: a GET must not answer on behalf of a mail scanner.

type swapAnswer struct {
	accept      bool
	ask, button string
	done        string
}

var swapAnswers = map[string]swapAnswer{
	"accept": {accept: true, ask: "Take this shift? You will be on call instead of them for the whole span.", button: "Accept",
		done: "Accepted. You are on call for this span now; the requester has been told."},
	"decline": {ask: "Decline this shift swap? The requester stays on call.", button: "Decline",
		done: "Declined. The requester has been told."},
}

func (s *Server) handleSwapPage(w http.ResponseWriter, r *http.Request) {
	answer, ok := swapAnswers[r.PathValue("answer")]
	if !ok {
		s.writeActionPage(w, r, http.StatusNotFound, actionView{Message: schedules.ErrSwapLinkUnknown.Error() + "."})
		return
	}
	sw, err := s.resolver.ScheduleStore.SwapByLink(r.Context(), r.PathValue("token"))
	if err == nil {
		err = sw.Answerable()
	}
	if err != nil {
		s.writeSwapError(w, r, err)
		return
	}
	span := fmt.Sprintf(" The span: %s to %s (UTC).", sw.Start.UTC().Format("Mon 2 Jan 2006 15:04"), sw.End.UTC().Format("Mon 2 Jan 2006 15:04"))
	s.writeActionPage(w, r, http.StatusOK, actionView{Message: answer.ask + span, Button: answer.button})
}

func (s *Server) handleSwapAnswer(w http.ResponseWriter, r *http.Request) {
	answer, ok := swapAnswers[r.PathValue("answer")]
	if !ok {
		s.writeActionPage(w, r, http.StatusNotFound, actionView{Message: schedules.ErrSwapLinkUnknown.Error() + "."})
		return
	}
	if _, err := s.resolver.ScheduleStore.AnswerByLink(r.Context(), r.PathValue("token"), answer.accept); err != nil {
		s.writeSwapError(w, r, err)
		return
	}
	s.writeActionPage(w, r, http.StatusOK, actionView{Message: answer.done})
}

func (s *Server) writeSwapError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *invalid.Field
	switch {
	case errors.Is(err, schedules.ErrSwapLinkUnknown):
		s.writeActionPage(w, r, http.StatusNotFound, actionView{Message: err.Error() + "."})
	case errors.As(err, &bad) && bad.Name == "id":
		// Used, expired, or refused because the schedule changed: the
		// reason says which.
		s.writeActionPage(w, r, http.StatusGone, actionView{Message: "Nothing was changed: " + bad.Reason + "."})
	case errors.As(err, &bad):
		s.writeActionPage(w, r, http.StatusConflict, actionView{Message: "Nothing was changed: " + bad.Reason + "."})
	default:
		s.writeActionError(w, r, err)
	}
}
