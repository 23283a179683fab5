package resolvers

import "github.com/klaxonhq/klaxon/rules"

// remediationInput is the deadlines of an integration input; nil when
// they were left out.
func remediationInput(in []*rules.Deadline) *rules.Remediation {
	if in == nil {
		return nil
	}
	r := make(rules.Remediation, 0, len(in))
	for _, d := range in {
		r = append(r, *d)
	}
	return &r
}
