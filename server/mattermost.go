package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
)

// mattermostActionRoute is where the buttons of Mattermost pages post.
const mattermostActionRoute = "/mattermost/actions"

// mattermostAction is what Mattermost posts when a button is pressed.
type mattermostAction struct {
	UserID   string                      `json:"user_id"`
	UserName string                      `json:"user_name"`
	Context  notifiers.MattermostContext `json:"context"`
}

// handleMattermostActions acts on a button of a Mattermost page. The
// button's signed context names the person the page went to, and the
// action is theirs: Mattermost sends only its own user id, which says
// nothing about a Klaxon user without an API token. Whoever pressed is
// named on the timeline.
func (s *Server) handleMattermostActions(w http.ResponseWriter, r *http.Request) {
	if len(s.cfg.MattermostKey) == 0 {
		writeError(w, http.StatusNotFound, "Mattermost is not configured")
		return
	}
	var in mattermostAction
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxChatActionBody)).Decode(&in); err != nil {
		writeMattermost(w, http.StatusBadRequest, "Nothing was changed: the request is not a Mattermost action.")
		return
	}
	c := in.Context
	if err := notifiers.VerifyMattermostContext(s.cfg.MattermostKey, c, s.cfg.Now()); err != nil {
		s.log.WarnContext(r.Context(), "refused a Mattermost action with a bad token")
		writeMattermost(w, http.StatusUnauthorized, "Nothing was changed: this button is not valid or has expired.")
		return
	}
	action := alerting.ChatAction(c.Action)
	if !action.Valid() {
		writeMattermost(w, http.StatusBadRequest, "Nothing was changed: unknown action.")
		return
	}
	via := "Mattermost"
	if name := strings.Join(strings.Fields(in.UserName), ""); name != "" {
		via = fmt.Sprintf("Mattermost (pressed by @%s)", clipName(name))
	}
	ctx := r.Context()
	alert, err := s.alerting.ActFromChat(ctx, c.AlertID, c.UserID, action, via)
	var bad *invalid.Field
	switch {
	case errors.Is(err, alerting.ErrRoleCannotAct):
		writeMattermost(w, http.StatusOK, "Nothing was changed: the role in Klaxon of the person paged does not allow acting on this alert. An admin can give them the RESPONDER role, or a responder's role in the alert's team.")
		return
	case errors.Is(db.Classify(err), db.ErrNotFound):
		writeMattermost(w, http.StatusOK, "Nothing was changed: the alert or the person paged no longer exists.")
		return
	case errors.As(err, &bad):
		writeMattermost(w, http.StatusOK, "Nothing was changed: "+bad.Reason+".")
		return
	case unavailable(err):
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "Mattermost: act on an alert", "alert", c.AlertID, "err", err)
		writeMattermost(w, http.StatusInternalServerError, "Something went wrong; nothing was changed.")
		return
	}
	done, err := s.chatDone(ctx, action, c.UserID)
	if err != nil {
		s.log.WarnContext(ctx, "Mattermost: name who acted", "err", err)
	}
	if via != "Mattermost" {
		done += " in " + via
	}
	msg := chatMessage(alert)
	msg.UserID = c.UserID
	actionURL := strings.TrimRight(s.cfg.PublicURL, "/") + mattermostActionRoute
	writeJSON(w, http.StatusOK, notifiers.MattermostUpdate(s.cfg.MattermostKey, actionURL, s.cfg.Now(), msg, string(alert.Status), done))
}

// writeMattermost answers with a message only the presser sees.
func writeMattermost(w http.ResponseWriter, status int, text string) {
	writeJSON(w, status, map[string]string{"ephemeral_text": text})
}

// clipName keeps a user name short enough for a timeline line.
func clipName(name string) string {
	if r := []rune(name); len(r) > 64 {
		return string(r[:64])
	}
	return name
}
