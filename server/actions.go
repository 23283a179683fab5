package server

import (
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"html/template"
	"net/http"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
)

// The link in a notification opens a page and only its button acts: mail
// scanners and chat previews fetch every link they see, and a GET must
// not acknowledge an alert on their behalf.
var actionPage = template.Must(template.New("action").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Klaxon</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
{{if .Alert}}<p><strong>Alert #{{.Alert.ID}}</strong> [{{.Alert.Severity}}] {{.Alert.Subject}}</p>{{end}}
<p>{{.Message}}</p>
{{if .Button}}<form method="post"><button type="submit" style="font-size: 1.25rem; padding: .75rem 1.5rem">{{.Button}}</button></form>{{end}}
</body></html>
`))

type actionView struct {
	Alert   *db.Alert
	Message string
	Button  string
}

func (s *Server) handleActionPage(w http.ResponseWriter, r *http.Request) {
	link, alert, err := s.alerting.ActionLink(r.Context(), r.PathValue("token"))
	if err != nil {
		s.writeActionError(w, r, err)
		return
	}
	view := actionView{Alert: alert, Message: "Acknowledge this alert? Escalation stops for it.", Button: "Acknowledge"}
	if link.Action == db.LinkClose {
		view.Message, view.Button = "Close this alert?", "Close"
	}
	s.writeActionPage(w, r, http.StatusOK, view)
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	alert, action, err := s.alerting.UseActionLink(r.Context(), r.PathValue("token"))
	if err != nil {
		s.writeActionError(w, r, err)
		return
	}
	done := "Acknowledged. Escalation has stopped for this alert."
	if action == db.LinkClose {
		done = "Closed."
	}
	s.writeActionPage(w, r, http.StatusOK, actionView{Alert: alert, Message: done})
}

func (s *Server) writeActionError(w http.ResponseWriter, r *http.Request, err error) {
	var bad *invalid.Field
	switch {
	case errors.Is(err, alerting.ErrActionLinkUnknown):
		s.writeActionPage(w, r, http.StatusNotFound, actionView{Message: err.Error() + "."})
	case errors.Is(err, alerting.ErrActionLinkUsed), errors.Is(err, alerting.ErrActionLinkExpired):
		s.writeActionPage(w, r, http.StatusGone, actionView{Message: err.Error() + "; nothing was changed."})
	case errors.Is(err, alerting.ErrRoleCannotAct):
		// The same rule as acknowledgeAlert over the API: a link does not
		// carry more rights than the person it was sent to has now.
		s.writeActionPage(w, r, http.StatusForbidden, actionView{Message: "Nothing was changed: your role in Klaxon does not allow acting on alerts. An admin can give you the RESPONDER role."})
	case errors.As(err, &bad):
		s.writeActionPage(w, r, http.StatusConflict, actionView{Message: "Nothing was changed: " + bad.Reason + "."})
	case unavailable(err):
		// A page, like every answer of this route: a person reads it.
		s.log.WarnContext(r.Context(), "action link: database unavailable", "err", err)
		w.Header().Set("Retry-After", retryAfterUnavailable)
		s.writeActionPage(w, r, http.StatusServiceUnavailable, actionView{Message: "Klaxon cannot reach its database just now; nothing was changed. Try again in a minute."})
	default:
		s.log.ErrorContext(r.Context(), "action link", "err", err)
		s.writeActionPage(w, r, http.StatusInternalServerError, actionView{Message: "Something went wrong; nothing was changed. Try again or use Klaxon itself."})
	}
}

func (s *Server) writeActionPage(w http.ResponseWriter, r *http.Request, status int, view actionView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The token is in the path: keep it out of other sites' logs.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	if err := actionPage.Execute(w, view); err != nil {
		s.log.ErrorContext(r.Context(), "render action page", "err", err)
	}
}
