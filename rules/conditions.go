package rules

import (
	"fmt"

	"github.com/klaxonhq/klaxon/invalid"
)

// Filter is a compiled list of conditions over an alert's fields alone,
// for callers that act on alerts rather than on messages (a workflow
// deciding whether an alert concerns it). It has no body to search, so
// conditions name a field, never a path or a fact.
type Filter struct {
	conds []compiledCond
}

// CompileFilter validates the conditions, which must all hold; at names
// the list in errors (e.g. "input.conditions"). Errors are *invalid.Field.
func CompileFilter(at string, conds []Condition) (*Filter, error) {
	f := &Filter{}
	for i, c := range conds {
		where := fmt.Sprintf("%s[%d]", at, i)
		if c.Path != "" {
			return nil, invalid.Fieldf(where+".path", "a filter tests the alert's fields, not a body path")
		}
		cc, err := compileCondition(where, c)
		if err != nil {
			return nil, err
		}
		if isFact(cc.field) {
			return nil, invalid.Fieldf(where+".field", "unknown field %q (want one of sourceId, sourceName, subject, severity, url, details)", c.Field)
		}
		f.conds = append(f.conds, cc)
	}
	return f, nil
}

// Matches says whether every condition holds for fields; an empty filter
// matches everything. The fields are an alert's stored ones, already
// bounded in size, so no step budget applies beyond the usual one.
func (f *Filter) Matches(fields Fields) bool {
	if f == nil {
		return true
	}
	vals := fieldValues(&fields)
	b := newBudget(MaxSteps)
	for i := range f.conds {
		if !f.conds[i].holds(nil, vals, b) {
			return false
		}
	}
	return !b.exhausted()
}
