package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Opsgenie's Alert API, drop-in: a sender that speaks it changes only its
// base URL and its key, which is an OPSGENIE integration's routing key
// sent as "Authorization: GenieKey <key>". Opsgenie answers 202 and
// processes later; Klaxon answers the same 202 only once the request is
// committed, and its requestId (the inbound message's id) reads the
// outcome back. The stored body is the request's JSON with what the URL
// said: "action", and for close, acknowledge and notes the "alias" of the
// alert.

const (
	opsgenieCreateRoute  = "POST /v2/alerts"
	opsgenieActionRoute  = "POST /v2/alerts/{identifier}/{action}"
	opsgenieRequestRoute = "GET /v2/alerts/requests/{requestId}"

	// Opsgenie's limits of the fields that name an alert. Longer
	// descriptions, sources and the like are taken: the alert's fields
	// are capped when mapped, and the stored body keeps them whole.
	opsgenieMaxMessage = 130
	opsgenieMaxAlias   = 512

	opsgenieNotProcessable = "Request body is not processable. Please check the errors."
)

// opsgenieReply is Opsgenie's answer in its documented shapes: 202
// {"result":"Request will be processed","took":…,"requestId":…}; an error
// {"message":…,"took":…,"requestId":…}, with "errors" by field for 422;
// and a request's status {"data":{…},"took":…,"requestId":…}.
type opsgenieReply struct {
	Result    string                 `json:"result,omitempty"`
	Message   string                 `json:"message,omitempty"`
	Errors    map[string]string      `json:"errors,omitempty"`
	Data      *opsgenieRequestStatus `json:"data,omitempty"`
	Took      float64                `json:"took"`
	RequestID string                 `json:"requestId"`
}

type opsgenieRequestStatus struct {
	Success       bool      `json:"success"`
	Action        string    `json:"action"`
	ProcessedAt   time.Time `json:"processedAt"`
	IntegrationID string    `json:"integrationId"`
	IsSuccess     bool      `json:"isSuccess"`
	Status        string    `json:"status"`
	AlertID       string    `json:"alertId"`
	Alias         string    `json:"alias"`
}

// opsgenieCall answers one request, timing it for "took".
type opsgenieCall struct {
	w     http.ResponseWriter
	start time.Time
}

func (c opsgenieCall) answer(status int, reply opsgenieReply) {
	// Opsgenie's clients read a took of 0 as missing: a fast answer
	// reads as a millisecond.
	reply.Took = max(math.Round(time.Since(c.start).Seconds()*1000)/1000, 0.001)
	if reply.RequestID == "" {
		// Nothing was stored: the id names no request to look up later.
		reply.RequestID = newRequestID()
	}
	// Opsgenie repeats the answer's metadata in headers, which its own
	// SDK reads rather than the body.
	h := c.w.Header()
	h.Set("X-Request-Id", reply.RequestID)
	h.Set("X-Response-Time", strconv.FormatFloat(reply.Took, 'f', 3, 64))
	state := "OK"
	if status == http.StatusTooManyRequests {
		state = "THROTTLED"
	}
	h.Set("X-RateLimit-State", state)
	writeJSON(c.w, status, reply)
}

func (c opsgenieCall) fail(status int, message string) {
	c.answer(status, opsgenieReply{Message: message})
}

// genieKey is the key of "Authorization: GenieKey <key>".
func genieKey(r *http.Request) (string, bool) {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	key = strings.TrimSpace(key)
	return key, ok && strings.EqualFold(scheme, "GenieKey") && key != ""
}

// opsgenieActions are the URL's actions on one alert, by the name the
// stored body and the preset's rules give them.
var opsgenieActions = map[string]string{"close": "close", "acknowledge": "acknowledge", "notes": "addNote"}

func (s *Server) handleOpsgenieCreate(w http.ResponseWriter, r *http.Request) {
	s.handleOpsgenie(w, r, "create")
}

func (s *Server) handleOpsgenieAction(w http.ResponseWriter, r *http.Request) {
	action, ok := opsgenieActions[r.PathValue("action")]
	if !ok {
		s.handleOpsgenieUnknown(w, r)
		return
	}
	s.handleOpsgenie(w, r, action)
}

// handleOpsgenieUnknown answers the rest of Opsgenie's Alert API (listing,
// updating a message or priority, …) in Opsgenie's shape, so a sender
// logs what was refused.
func (s *Server) handleOpsgenieUnknown(w http.ResponseWriter, r *http.Request) {
	opsgenieCall{w: w, start: time.Now()}.fail(http.StatusNotFound,
		"Klaxon's Opsgenie API takes POST /v2/alerts, POST /v2/alerts/{identifier}/close, /acknowledge and /notes, and GET /v2/alerts/requests/{requestId}")
}

// handleOpsgenie takes a create, close, acknowledge or add-note request. What is
// refused before the key names an integration (no key, an unknown one, a
// disabled integration, a rate limit) stores nothing; every other bad
// request is stored as MAPPING_FAILED and answered 422 with the errors by
// field (404 when the alert it names by id is not the integration's).
func (s *Server) handleOpsgenie(w http.ResponseWriter, r *http.Request, action string) {
	call := opsgenieCall{w: w, start: time.Now()}
	key, ok := genieKey(r)
	if !ok {
		s.metrics.webhookRefused("unknown_token")
		call.fail(http.StatusUnauthorized, "Could not authenticate: send Authorization: GenieKey <key>")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.webhookRefused("too_large")
			call.fail(http.StatusRequestEntityTooLarge, "Request body exceeds "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		call.fail(http.StatusBadRequest, "Could not read the request body")
		return
	}
	problems := map[string]string{}
	request := map[string]json.RawMessage{}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &request); err != nil || request == nil {
			request = map[string]json.RawMessage{}
			problems["body"] = "must be a JSON object"
		}
	}
	notFound := false
	switch action {
	case "create":
		checkOpsgenieCreate(request, problems)
	default:
		alias, missing, err := s.opsgenieAlias(r, key)
		switch {
		case errors.Is(err, alerting.ErrUnknownToken):
			// Answered below, by Ingest's refusal of the same key.
		case err != nil:
			s.log.ErrorContext(r.Context(), "Opsgenie alert lookup", "err", err)
			call.fail(http.StatusInternalServerError, "The request could not be processed; retry later")
			return
		case missing != "":
			problems["identifier"], notFound = missing, true
		case alias == "":
			problems["identifierType"] = "must be id or alias"
		default:
			request["alias"], _ = json.Marshal(alias)
		}
		checkOpsgenieStrings(request, problems, map[string]int{"user": 0, "source": 0, "note": 0})
		if note, _ := jsonString(request, "note"); action == "addNote" && problems["note"] == "" && strings.TrimSpace(note) == "" {
			problems["note"] = "Note can not be empty."
		}
	}
	request["action"], _ = json.Marshal(action)
	stored, err := json.Marshal(request)
	if err != nil {
		s.log.ErrorContext(r.Context(), "encode Opsgenie request", "err", err)
		call.fail(http.StatusInternalServerError, "The request could not be processed; retry later")
		return
	}
	res, err := s.alerting.Ingest(r.Context(), alerting.Inbound{
		Body: stored, Headers: keptHeadersOf(r), RemoteAddr: s.clientAddr(r),
		Type: rules.TypeOpsgenie, RoutingKey: key,
		Invalid: opsgenieProblemText(problems),
	})
	refusal, message, retryAfter := s.refusalOf(r, err)
	setRetryAfter(w, refusal, retryAfter)
	switch refusal {
	case refusedRateLimited:
		call.fail(http.StatusTooManyRequests, "Too many requests: "+message)
		return
	case refusedUnknownKey:
		call.fail(http.StatusUnauthorized, "Could not authenticate: the key is not an OPSGENIE integration's")
		return
	case refusedDisabled:
		call.fail(http.StatusForbidden, "The integration of this key is disabled")
		return
	case refusedUnavailable:
		call.fail(http.StatusServiceUnavailable, "The database is unavailable; nothing was stored, retry later")
		return
	case refusedFailed:
		call.fail(http.StatusInternalServerError, "The request could not be processed; retry later")
		return
	}
	s.metrics.webhookStored(res.Status)
	requestID := strconv.Itoa(res.MessageID)
	switch {
	case notFound:
		call.answer(http.StatusNotFound, opsgenieReply{Message: problems["identifier"], RequestID: requestID})
	case res.Status == db.InboundMappingFailed || res.Status == db.InboundRefused:
		if len(problems) == 0 {
			problems["body"] = res.Detail
		}
		call.answer(http.StatusUnprocessableEntity, opsgenieReply{Message: opsgenieNotProcessable, Errors: problems, RequestID: requestID})
	default:
		call.answer(http.StatusAccepted, opsgenieReply{Result: "Request will be processed", RequestID: requestID})
	}
}

// opsgenieAlias is the alias of the alert the URL names: the identifier
// itself with identifierType=alias, the alert's dedup key with
// identifierType=id (the default), where the id is a Klaxon alert's.
// missing says why no alert of the key's integration has the id; alias
// is empty for an identifierType Klaxon does not take (tiny).
func (s *Server) opsgenieAlias(r *http.Request, key string) (alias, missing string, err error) {
	identifier := r.PathValue("identifier")
	switch r.URL.Query().Get("identifierType") {
	case "alias":
		if utf8.RuneCountInString(identifier) > opsgenieMaxAlias {
			return "", fmt.Sprintf("Alias is longer than %d characters", opsgenieMaxAlias), nil
		}
		return identifier, "", nil
	case "", "id":
	default:
		return "", "", nil
	}
	integ, err := s.alerting.IntegrationByKey(r.Context(), rules.TypeOpsgenie, key)
	if err != nil {
		return "", "", err
	}
	noAlert := "Alert with id [" + identifier + "] does not exist"
	id, err := strconv.Atoi(identifier)
	if err != nil {
		return "", noAlert, nil
	}
	alert, err := s.alerting.Alert(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && (alert.IntegrationID == nil || *alert.IntegrationID != integ.ID)) {
		return "", noAlert, nil
	}
	if err != nil {
		return "", "", err
	}
	return alert.SourceID, "", nil
}

// checkOpsgenieCreate checks a create request as Opsgenie does, gives an
// alert without an alias one of its own (each such request is a new
// alert, as in Opsgenie), and records the severity its priority stands
// for (P3 when it names none, Opsgenie's default).
func checkOpsgenieCreate(request map[string]json.RawMessage, problems map[string]string) {
	if message, ok := jsonString(request, "message"); !ok || strings.TrimSpace(message) == "" {
		problems["message"] = "Message can not be empty."
	} else if utf8.RuneCountInString(message) > opsgenieMaxMessage {
		problems["message"] = fmt.Sprintf("Message can not be longer than %d characters.", opsgenieMaxMessage)
	}
	checkOpsgenieStrings(request, problems, map[string]int{
		"alias": opsgenieMaxAlias, "description": 0, "entity": 0, "source": 0, "user": 0, "note": 0,
	})
	priority := "P3"
	if raw, present := request["priority"]; present && string(raw) != "null" {
		priority, _ = jsonString(request, "priority")
	}
	severity, ok := prioritySeverity[priority]
	if !ok {
		problems["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]."
	}
	if raw, present := request["tags"]; present && string(raw) != "null" {
		var tags []string
		if json.Unmarshal(raw, &tags) != nil {
			problems["tags"] = "Tags should be a list of strings."
		}
	}
	if raw, present := request["details"]; present && string(raw) != "null" {
		var details map[string]string
		if json.Unmarshal(raw, &details) != nil {
			problems["details"] = "Details should be an object of string values."
		}
	}
	if raw, present := request["responders"]; present && string(raw) != "null" {
		// Klaxon pages by the integration's policy and rules: responders
		// are kept in the stored body, for rules to read, and paged by
		// nobody.
		var responders []map[string]any
		if json.Unmarshal(raw, &responders) != nil {
			problems["responders"] = "Responders should be a list of objects."
		}
	}
	if len(problems) > 0 {
		return
	}
	if alias, _ := jsonString(request, "alias"); strings.TrimSpace(alias) == "" {
		request["alias"], _ = json.Marshal(newRequestID())
	}
	request["priority"], _ = json.Marshal(priority)
	request["severity"], _ = json.Marshal(severity)
}

// prioritySeverity is the severity each Opsgenie priority stands for.
var prioritySeverity = map[string]string{"P1": "critical", "P2": "high", "P3": "medium", "P4": "low", "P5": "info"}

// checkOpsgenieStrings checks that each named field, when present, is a
// string of at most its limit in characters (0: any length).
func checkOpsgenieStrings(request map[string]json.RawMessage, problems map[string]string, limits map[string]int) {
	for name, limit := range limits {
		raw, present := request[name]
		if !present || string(raw) == "null" || problems[name] != "" {
			continue
		}
		v, ok := jsonString(request, name)
		switch {
		case !ok:
			problems[name] = strings.ToUpper(name[:1]) + name[1:] + " should be a string."
		case limit > 0 && utf8.RuneCountInString(v) > limit:
			problems[name] = fmt.Sprintf("%s can not be longer than %d characters.", strings.ToUpper(name[:1])+name[1:], limit)
		}
	}
}

// opsgenieProblemText is the problems as one line for the inbound log,
// in field order so the same request always reads the same.
func opsgenieProblemText(problems map[string]string) string {
	fields := make([]string, 0, len(problems))
	for field := range problems {
		fields = append(fields, field)
	}
	slices.Sort(fields)
	parts := make([]string, len(fields))
	for i, field := range fields {
		parts[i] = field + ": " + problems[field]
	}
	return strings.Join(parts, "; ")
}

// handleOpsgenieRequest answers a request's status from the inbound log:
// only the integration that received it can read it.
func (s *Server) handleOpsgenieRequest(w http.ResponseWriter, r *http.Request) {
	call := opsgenieCall{w: w, start: time.Now()}
	key, ok := genieKey(r)
	if !ok {
		call.fail(http.StatusUnauthorized, "Could not authenticate: send Authorization: GenieKey <key>")
		return
	}
	integ, err := s.alerting.IntegrationByKey(r.Context(), rules.TypeOpsgenie, key)
	if errors.Is(err, alerting.ErrUnknownToken) {
		call.fail(http.StatusUnauthorized, "Could not authenticate: the key is not an OPSGENIE integration's")
		return
	}
	if err != nil {
		s.opsgenieLookupFailed(call, r, err)
		return
	}
	requestID := r.PathValue("requestId")
	notFound := opsgenieReply{Message: "Request with id [" + requestID + "] does not exist", RequestID: requestID}
	id, err := strconv.Atoi(requestID)
	if err != nil {
		call.answer(http.StatusNotFound, notFound)
		return
	}
	msg, err := s.alerting.InboundMessage(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) || (err == nil && msg.IntegrationID != integ.ID) {
		call.answer(http.StatusNotFound, notFound)
		return
	}
	if err != nil {
		s.opsgenieLookupFailed(call, r, err)
		return
	}
	var stored struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(msg.Body, &stored)
	status := &opsgenieRequestStatus{
		Success: true, Action: opsgenieActionName(stored.Action), ProcessedAt: msg.ReceivedAt,
		IntegrationID: strconv.Itoa(integ.ID), Alias: msg.SourceID,
		IsSuccess: opsgenieSucceeded(msg.Status), Status: opsgenieStatusText(msg),
	}
	if msg.AlertID != nil {
		status.AlertID = strconv.Itoa(*msg.AlertID)
	}
	call.answer(http.StatusOK, opsgenieReply{Data: status, RequestID: requestID})
}

func (s *Server) opsgenieLookupFailed(call opsgenieCall, r *http.Request, err error) {
	if unavailable(err) {
		call.w.Header().Set("Retry-After", retryAfterUnavailable)
		call.fail(http.StatusServiceUnavailable, "The database is unavailable; retry later")
		return
	}
	s.log.ErrorContext(r.Context(), "Opsgenie request lookup", "err", err)
	call.fail(http.StatusInternalServerError, "The request could not be read; retry later")
}

// opsgenieActionName is Opsgenie's name of a stored request's action.
func opsgenieActionName(action string) string {
	switch action {
	case "create":
		return "Create"
	case "close":
		return "Close"
	case "acknowledge":
		return "Acknowledge"
	case "addNote":
		return "AddNote"
	}
	return "Unknown"
}

// opsgenieSucceeded says whether a request did what it asked: a close or
// acknowledge that found no alert to act on did not, as in Opsgenie.
func opsgenieSucceeded(status db.InboundStatus) bool {
	switch status {
	case db.InboundMappingFailed, db.InboundRefused, db.InboundIgnored:
		return false
	}
	return true
}

func opsgenieStatusText(msg *db.InboundMessage) string {
	switch msg.Status {
	case db.InboundOpened:
		return "Created alert"
	case db.InboundAppended:
		return "Alert already exists: its count went up"
	case db.InboundClosed:
		return "Closed alert"
	case db.InboundAcknowledged:
		return "Acknowledged alert"
	case db.InboundNoteAdded:
		return "Added note"
	}
	return msg.Detail
}

// newRequestID is a random id in the UUID layout Opsgenie's request ids
// have, for a request nothing was stored for, and for an alias-less alert.
func newRequestID() string {
	h := newDedupKey()
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
