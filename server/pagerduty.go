package server

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// PagerDuty's Events API v2, drop-in: a sender that speaks it (Alertmanager,
// Grafana, Datadog, a curl script) changes only its base URL and its
// routing_key, which is a PAGERDUTY integration's routing key. The body
// is stored without the routing_key and mapped by the integration's
// mapping and ruleset like any webhook; the preset opens on trigger,
// acknowledges on acknowledge and closes on resolve, by dedup_key.

const (
	pagerDutyEnqueueRoute = "POST /v2/enqueue"
	pagerDutyChangeRoute  = "POST /v2/change/enqueue"
	// pagerDutyMaxSummary and pagerDutyMaxDedupKey are PagerDuty's limits.
	pagerDutyMaxSummary  = 1024
	pagerDutyMaxDedupKey = 255
)

// pagerDutyReply is PagerDuty's answer, in all its documented shapes:
// {"status":"success","message":"Event processed","dedup_key":…} (202),
// {"status":"invalid event","message":…,"errors":[…]} (400), and
// {"status":"throttle event","message":…} (429).
type pagerDutyReply struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

const pagerDutyInvalid = "Event object is invalid"

func writePagerDutyInvalid(w http.ResponseWriter, problems ...string) {
	writeJSON(w, http.StatusBadRequest, pagerDutyReply{Status: "invalid event", Message: pagerDutyInvalid, Errors: problems})
}

func (s *Server) handlePagerDutyEvent(w http.ResponseWriter, r *http.Request) {
	s.handlePagerDuty(w, r, false)
}

func (s *Server) handlePagerDutyChange(w http.ResponseWriter, r *http.Request) {
	s.handlePagerDuty(w, r, true)
}

// handlePagerDuty takes an alert event, or a change event when change is
// set. What is refused before the routing key names an integration (a
// body that is not a JSON object, a missing or unknown key, a disabled
// integration, a rate limit) stores nothing; every other bad event is
// stored as MAPPING_FAILED and answered 400 with what is wrong.
func (s *Server) handlePagerDuty(w http.ResponseWriter, r *http.Request, change bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.webhookRefused("too_large")
			writePagerDutyInvalid(w, "Request body exceeds "+strconv.FormatInt(s.cfg.MaxBodyBytes, 10)+" bytes")
			return
		}
		writePagerDutyInvalid(w, "Could not read the request body")
		return
	}
	var event map[string]json.RawMessage
	if err := json.Unmarshal(body, &event); err != nil || event == nil {
		writePagerDutyInvalid(w, "Request body must be a JSON object")
		return
	}
	key, ok := jsonString(event, "routing_key")
	if !ok || strings.TrimSpace(key) == "" {
		writePagerDutyInvalid(w, "'routing_key' is missing or blank")
		return
	}
	var problems []string
	var dedupKey, changeSummary string
	if change {
		changeSummary, problems = checkPagerDutyChange(event)
	} else {
		dedupKey, problems = checkPagerDutyEvent(event)
	}
	// The routing key is our credential: the inbound log, which more
	// people read than may see the key, does not keep it.
	delete(event, "routing_key")
	if dedupKey != "" {
		// The mapping reads the key from the body, generated or not.
		event["dedup_key"], _ = json.Marshal(dedupKey)
	}
	stored, err := json.Marshal(event)
	if err != nil {
		s.log.ErrorContext(r.Context(), "encode PagerDuty event", "err", err)
		writeJSON(w, http.StatusInternalServerError, pagerDutyReply{Status: "error", Message: "The event could not be stored; retry later"})
		return
	}
	in := alerting.Inbound{
		Body: stored, Headers: keptHeadersOf(r), RemoteAddr: s.clientAddr(r),
		Type: rules.TypePagerDuty, RoutingKey: key,
		Invalid: strings.Join(problems, "; "),
	}
	if change && len(problems) == 0 {
		in.ChangeEvent = "Change event: " + changeSummary
	}
	res, err := s.alerting.Ingest(r.Context(), in)
	refusal, message, retryAfter := s.refusalOf(r, err)
	setRetryAfter(w, refusal, retryAfter)
	switch refusal {
	case refusedRateLimited:
		writeJSON(w, http.StatusTooManyRequests, pagerDutyReply{Status: "throttle event", Message: "Requests for this service are arriving too quickly: " + message})
		return
	case refusedUnknownKey:
		writePagerDutyInvalid(w, "Invalid routing key")
		return
	case refusedDisabled:
		writePagerDutyInvalid(w, "The integration of this routing key is disabled")
		return
	case refusedUnavailable:
		writeJSON(w, http.StatusServiceUnavailable, pagerDutyReply{Status: "error", Message: "The database is unavailable; nothing was stored, retry later"})
		return
	case refusedFailed:
		writeJSON(w, http.StatusInternalServerError, pagerDutyReply{Status: "error", Message: "The event could not be stored; retry later"})
		return
	}
	s.metrics.webhookStored(res.Status)
	switch {
	case res.Status == db.InboundMappingFailed || res.Status == db.InboundRefused:
		// problems, when there are any, are the detail, split again.
		if len(problems) == 0 {
			problems = []string{res.Detail}
		}
		writePagerDutyInvalid(w, problems...)
	case change:
		writeJSON(w, http.StatusAccepted, pagerDutyReply{Status: "success", Message: "Change event processed"})
	default:
		writeJSON(w, http.StatusAccepted, pagerDutyReply{Status: "success", Message: "Event processed", DedupKey: dedupKey})
	}
}

// pagerDutySeverities are the values payload.severity may take.
var pagerDutySeverities = []string{"critical", "error", "warning", "info"}

// checkPagerDutyEvent checks an alert event as PagerDuty does, and
// returns its dedup key: the sender's, or for a trigger without one a
// new key, which the reply returns so the sender can resolve it later.
func checkPagerDutyEvent(event map[string]json.RawMessage) (dedupKey string, problems []string) {
	action, ok := jsonString(event, "event_action")
	switch {
	case !ok:
		problems = append(problems, "'event_action' is missing or not a string")
	case action != "trigger" && action != "acknowledge" && action != "resolve":
		problems = append(problems, "'event_action' must be one of trigger, acknowledge, resolve")
	}
	if raw, present := event["dedup_key"]; present && string(raw) != "null" {
		if dedupKey, ok = jsonString(event, "dedup_key"); !ok {
			problems = append(problems, "'dedup_key' must be a string")
		} else if utf8.RuneCountInString(dedupKey) > pagerDutyMaxDedupKey {
			problems = append(problems, fmt.Sprintf("'dedup_key' is longer than %d characters", pagerDutyMaxDedupKey))
		}
	}
	if strings.TrimSpace(dedupKey) == "" {
		dedupKey = ""
		if action == "acknowledge" || action == "resolve" {
			problems = append(problems, "'dedup_key' is required for "+action+" events")
		}
	}
	if action == "trigger" {
		problems = append(problems, checkPagerDutyPayload(event)...)
	}
	problems = append(problems, checkPagerDutyLinks(event, "links", "href")...)
	problems = append(problems, checkPagerDutyLinks(event, "images", "src")...)
	if len(problems) == 0 && action == "trigger" && dedupKey == "" {
		dedupKey = newDedupKey()
	}
	return dedupKey, problems
}

// checkPagerDutyPayload checks a trigger's payload.
func checkPagerDutyPayload(event map[string]json.RawMessage) []string {
	var payload map[string]json.RawMessage
	if raw, present := event["payload"]; !present || json.Unmarshal(raw, &payload) != nil || payload == nil {
		return []string{"'payload' is missing or not an object"}
	}
	var problems []string
	summary, ok := jsonString(payload, "summary")
	switch {
	case !ok || strings.TrimSpace(summary) == "":
		problems = append(problems, "'payload.summary' is missing or blank")
	case utf8.RuneCountInString(summary) > pagerDutyMaxSummary:
		problems = append(problems, fmt.Sprintf("'payload.summary' is longer than %d characters", pagerDutyMaxSummary))
	}
	if source, ok := jsonString(payload, "source"); !ok || strings.TrimSpace(source) == "" {
		problems = append(problems, "'payload.source' is missing or blank")
	}
	severity, ok := jsonString(payload, "severity")
	if !ok || !slices.Contains(pagerDutySeverities, severity) {
		problems = append(problems, "'payload.severity' must be one of "+strings.Join(pagerDutySeverities, ", "))
	}
	problems = append(problems, checkPagerDutyTimestamp(payload, "payload.timestamp")...)
	for _, name := range []string{"component", "group", "class"} {
		if raw, present := payload[name]; present && string(raw) != "null" {
			if _, ok := jsonString(payload, name); !ok {
				problems = append(problems, "'payload."+name+"' must be a string")
			}
		}
	}
	return problems
}

// checkPagerDutyChange checks a change event and returns its summary.
func checkPagerDutyChange(event map[string]json.RawMessage) (summary string, problems []string) {
	var payload map[string]json.RawMessage
	if raw, present := event["payload"]; !present || json.Unmarshal(raw, &payload) != nil || payload == nil {
		return "", []string{"'payload' is missing or not an object"}
	}
	summary, ok := jsonString(payload, "summary")
	switch {
	case !ok || strings.TrimSpace(summary) == "":
		problems = append(problems, "'payload.summary' is missing or blank")
	case utf8.RuneCountInString(summary) > pagerDutyMaxSummary:
		problems = append(problems, fmt.Sprintf("'payload.summary' is longer than %d characters", pagerDutyMaxSummary))
	}
	problems = append(problems, checkPagerDutyTimestamp(payload, "payload.timestamp")...)
	problems = append(problems, checkPagerDutyLinks(event, "links", "href")...)
	return summary, problems
}

func checkPagerDutyTimestamp(payload map[string]json.RawMessage, name string) []string {
	raw, present := payload["timestamp"]
	if !present || string(raw) == "null" {
		return nil
	}
	ts, ok := jsonString(payload, "timestamp")
	if !ok {
		return []string{"'" + name + "' must be an ISO 8601 string"}
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return []string{"'" + name + "' is not an ISO 8601 timestamp"}
	}
	return nil
}

// checkPagerDutyLinks checks that event[name], when present, is a list
// of objects each with a string field required.
func checkPagerDutyLinks(event map[string]json.RawMessage, name, required string) []string {
	raw, present := event[name]
	if !present || string(raw) == "null" {
		return nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return []string{"'" + name + "' must be a list of objects"}
	}
	var problems []string
	for i, item := range items {
		if v, ok := jsonString(item, required); !ok || v == "" {
			problems = append(problems, fmt.Sprintf("'%s[%d].%s' is missing or blank", name, i, required))
		}
	}
	return problems
}

// jsonString is obj[name] when it is a JSON string.
func jsonString(obj map[string]json.RawMessage, name string) (string, bool) {
	raw, present := obj[name]
	if !present {
		return "", false
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v, true
}

// newDedupKey is a key for a trigger that came without one: 128 random
// bits in hex, like PagerDuty's own.
func newDedupKey() string {
	raw := make([]byte, 16)
	// crypto/rand.Read never fails (it crashes the program instead).
	rand.Read(raw)
	return hex.EncodeToString(raw)
}
