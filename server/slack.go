package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
)

// slackEmailTTL is how long a Slack user's email address is trusted
// without asking Slack again: a burst of clicks costs one users.info
// call, and an address changed in Slack is taken up within minutes.
const slackEmailTTL = 5 * time.Minute

// maxChatActionBody caps an interactivity request; Slack's carry the
// whole message, which stays far below this.
const maxChatActionBody = 256 << 10

// slackInteraction is the part of a block_actions payload Klaxon reads.
type slackInteraction struct {
	Type string `json:"type"`
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		MessageTS string `json:"message_ts"`
		ChannelID string `json:"channel_id"`
	} `json:"container"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

var slackActions = map[string]alerting.ChatAction{
	notifiers.SlackActionAcknowledge: alerting.ChatAcknowledge,
	notifiers.SlackActionClose:       alerting.ChatClose,
	notifiers.SlackActionEscalate:    alerting.ChatEscalate,
}

// handleSlackActions acts on a button of a page posted by Klaxon's Slack
// app, as the Klaxon user whose email address the presser's Slack
// account has, and edits the page to say who did what. Anything refused
// is explained to the presser alone and changes nothing.
func (s *Server) handleSlackActions(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SlackSigningSecret == "" || s.cfg.Slack == nil {
		writeError(w, http.StatusNotFound, "the Slack app is not configured")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxChatActionBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body too large")
		return
	}
	if err := notifiers.VerifySlackSignature(s.cfg.SlackSigningSecret, r.Header.Get("X-Slack-Request-Timestamp"), body, r.Header.Get("X-Slack-Signature"), s.cfg.Now()); err != nil {
		s.log.WarnContext(r.Context(), "refused a Slack request with a bad signature")
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, "body is not a form")
		return
	}
	var in slackInteraction
	if err := json.Unmarshal([]byte(form.Get("payload")), &in); err != nil {
		writeError(w, http.StatusBadRequest, "payload is not JSON")
		return
	}
	if in.Type != "block_actions" || len(in.Actions) == 0 {
		// Other interactions (a shortcut, a modal) are not Klaxon's.
		w.WriteHeader(http.StatusOK)
		return
	}
	action, known := slackActions[in.Actions[0].ActionID]
	alertID, err := strconv.Atoi(in.Actions[0].Value)
	if !known || err != nil || alertID <= 0 {
		writeError(w, http.StatusBadRequest, "not a Klaxon button")
		return
	}
	channel, ts := in.Container.ChannelID, in.Container.MessageTS
	if channel == "" {
		channel = in.Channel.ID
	}
	ctx := r.Context()
	explain := func(text string) {
		if err := s.cfg.Slack.Ephemeral(ctx, channel, in.User.ID, text); err != nil {
			s.log.WarnContext(ctx, "Slack: could not explain a refused button", "err", err)
		}
		w.WriteHeader(http.StatusOK)
	}

	email, err := s.slackEmails.get(ctx, in.User.ID, s.cfg.Slack.UserEmail)
	if err != nil {
		s.log.WarnContext(ctx, "Slack: look up the user who pressed a button", "err", err)
		explain("Klaxon could not ask Slack who you are just now; nothing was changed. Try again in a minute.")
		return
	}
	user, err := s.alerting.ChatActorByEmail(ctx, email)
	switch {
	case errors.Is(err, alerting.ErrChatUserUnknown):
		explain("Nothing was changed: your Slack account's email address is not a Klaxon user's (or Slack has not confirmed it). Ask an admin to add you to Klaxon with the same address.")
		return
	case unavailable(err):
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "Slack: find the user who pressed a button", "err", err)
		explain("Something went wrong; nothing was changed.")
		return
	}

	alert, err := s.alerting.ActFromChat(ctx, alertID, user.ID, action, "Slack")
	var bad *invalid.Field
	switch {
	case errors.Is(err, alerting.ErrRoleCannotAct):
		explain("Nothing was changed: your role in Klaxon does not allow acting on this alert. An admin can give you the RESPONDER role, or a responder's role in the alert's team.")
		return
	case errors.Is(db.Classify(err), db.ErrNotFound):
		explain(fmt.Sprintf("Nothing was changed: alert %d no longer exists.", alertID))
		return
	case errors.As(err, &bad):
		explain("Nothing was changed: " + bad.Reason + ".")
		return
	case unavailable(err):
		writeUnavailable(w)
		return
	case err != nil:
		s.log.ErrorContext(ctx, "Slack: act on an alert", "alert", alertID, "err", err)
		explain("Something went wrong; nothing was changed.")
		return
	}
	done, err := s.chatDone(ctx, action, user.ID)
	if err != nil {
		s.log.WarnContext(ctx, "Slack: name who acted", "err", err)
	}
	update := notifiers.SlackAlert{Message: chatMessage(alert), Status: string(alert.Status), Done: done}
	if err := s.cfg.Slack.UpdateAlert(ctx, channel, ts, update); err != nil {
		// The alert has changed all the same; the timeline says so.
		s.log.WarnContext(ctx, "Slack: update the page", "alert", alertID, "err", err)
	}
	w.WriteHeader(http.StatusOK)
}

// chatDone is the line a chat page gets once someone acted on it.
func (s *Server) chatDone(ctx context.Context, action alerting.ChatAction, userID int) (string, error) {
	verb := map[alerting.ChatAction]string{alerting.ChatAcknowledge: "Acknowledged", alerting.ChatClose: "Closed", alerting.ChatEscalate: "Escalated"}[action]
	who, err := s.alerting.UserLabel(ctx, userID)
	if err != nil {
		return verb, err
	}
	return verb + " by " + who, nil
}

// chatMessage is the alert as a chat page shows it.
func chatMessage(a *db.Alert) notifiers.Message {
	return notifiers.Message{AlertID: a.ID, AlertNumber: a.Number(), Subject: a.Subject, Severity: a.Severity,
		Details: a.Details, SourceName: a.SourceName, URL: a.URL}
}

// emailCache remembers chat users' email addresses for a while.
type emailCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cachedEmail
}

type cachedEmail struct {
	email   string
	expires time.Time
}

// emailCacheMax bounds the cache; past it, it starts over.
const emailCacheMax = 10000

func newEmailCache(ttl time.Duration, now func() time.Time) *emailCache {
	return &emailCache{ttl: ttl, now: now, m: map[string]cachedEmail{}}
}

// get returns the cached address of id, or looks it up and caches it.
// Failed lookups are not cached.
func (c *emailCache) get(ctx context.Context, id string, lookup func(context.Context, string) (string, error)) (string, error) {
	c.mu.Lock()
	hit, ok := c.m[id]
	c.mu.Unlock()
	if ok && c.now().Before(hit.expires) {
		return hit.email, nil
	}
	email, err := lookup(ctx, id)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= emailCacheMax {
		c.m = map[string]cachedEmail{}
	}
	c.m[id] = cachedEmail{email: email, expires: c.now().Add(c.ttl)}
	return email, nil
}
