package rules

import "github.com/klaxonhq/klaxon/invalid"

// Facts are what the caller knows about a message beyond its body. They
// come from the alerts already stored, which this package cannot read:
// the caller looks them up only when Program.NeedsFacts says a rule asks.
type Facts struct {
	// Regression says that opening an alert for the message's source now
	// would bring back a finding closed within the integration's
	// regression window.
	Regression bool
}

// factNames are the names of the facts a Condition.Field may test, after
// fieldNames: condition field indexes go on past the mapped fields.
var factNames = []string{"regression"}

// values appends the facts to vals in factNames order, as condition
// values: "true" or "false".
func (f Facts) values(vals []string) []string {
	regression := "false"
	if f.Regression {
		regression = "true"
	}
	return append(vals, regression)
}

// isFact says whether a condition's field index names a fact.
func isFact(field int) bool { return field >= len(fieldNames) }

// checkFactCondition limits a condition on a fact, which is true or
// false, to the operators that make sense for it.
func checkFactCondition(at string, c Condition) error {
	switch c.Op {
	case OpEquals, OpNotEquals:
	default:
		return invalid.Fieldf(at+".op", "field %q takes EQUALS or NOT_EQUALS, not %s", c.Field, c.Op)
	}
	if c.Value != "true" && c.Value != "false" {
		return invalid.Fieldf(at+".value", "field %q is true or false, not %q", c.Field, c.Value)
	}
	return nil
}
