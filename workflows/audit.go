package workflows

import (
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// What the audit log keeps of a workflow: the fields an admin sets, by
// their API names. Header values are left out: they often hold a token
// for the receiving service.
type workflowRecord struct {
	Name          string             `json:"name"`
	IntegrationID *int               `json:"integrationId"`
	On            []db.WorkflowEvent `json:"on"`
	Conditions    []rules.Condition  `json:"conditions"`
	Method        string             `json:"method"`
	URL           string             `json:"url"`
	HeaderNames   []string           `json:"headerNames"`
	Body          string             `json:"body"`
}

func recordOf(w *db.Workflow) *workflowRecord {
	r := &workflowRecord{Name: w.Name, IntegrationID: w.IntegrationID, On: w.OnEvents(), Conditions: w.Conditions,
		Method: w.Method, URL: w.URL, Body: w.Body, HeaderNames: []string{}}
	for _, h := range w.Headers {
		r.HeaderNames = append(r.HeaderNames, h.Name)
	}
	return r
}
