package policies

import "github.com/klaxonhq/klaxon/db"

// What the audit log keeps of an escalation policy: the fields an admin
// sets, by their API names. Row ids of steps are left out, as replacing
// them with equal ones is no change.

type policyRecord struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Repeat      int          `json:"repeat"`
	Steps       []stepRecord `json:"steps"`
	// AckTimeoutMinutes is null when acknowledgements never time out.
	AckTimeoutMinutes *int `json:"ackTimeoutMinutes"`
	TeamID            *int `json:"teamId,omitempty"`
}

type stepRecord struct {
	DelayMinutes int         `json:"delayMinutes"`
	Targets      []db.Target `json:"targets"`
}

func recordOfPolicy(p *db.EscalationPolicy) *policyRecord {
	r := &policyRecord{Name: p.Name, Description: p.Description, Repeat: p.Repeat, Steps: []stepRecord{}, AckTimeoutMinutes: p.AckTimeoutMinutes, TeamID: p.TeamID}
	for _, s := range p.Steps {
		r.Steps = append(r.Steps, stepRecord{DelayMinutes: s.DelayMinutes, Targets: s.Targets})
	}
	return r
}
