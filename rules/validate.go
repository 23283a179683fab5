package rules

import (
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"
	"regexp"

	"github.com/theory/jsonpath"
)

// fieldNames are the names a Condition.Field may use, in Fields order.
var fieldNames = []string{"sourceId", "sourceName", "subject", "severity", "url", "details"}

func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

// exprs returns the expression lists in fieldNames order.
func (m Mapping) exprs() [][]string {
	return [][]string{m.SourceID, m.SourceName, m.Subject, m.Severity, m.URL, m.Details}
}

// Validate checks that every expression parses.
func (m Mapping) Validate() error {
	_, err := compileMapping(m)
	return err
}

func compileMapping(m Mapping) ([][]mappedPath, error) {
	out := make([][]mappedPath, len(fieldNames))
	for fi, list := range m.exprs() {
		for i, expr := range list {
			p, err := parsePath(expr)
			if err != nil {
				return nil, invalid.Fieldf(fmt.Sprintf("mapping.%s[%d]", fieldNames[fi], i), "%s", err)
			}
			out[fi] = append(out[fi], mappedPath{path: p, many: p.Query().Singular() == nil})
		}
	}
	return out, nil
}

func parsePath(expr string) (*jsonpath.Path, error) {
	if expr == "" {
		return nil, fmt.Errorf("empty JSONPath")
	}
	p, err := jsonpath.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("invalid JSONPath: %w", err)
	}
	if err := checkFilters(p); err != nil {
		return nil, err
	}
	return p, nil
}

// ValidateRules checks a ruleset without keeping the compiled form.
func ValidateRules(rs []Rule) error {
	_, err := compileRules(rs)
	return err
}

func compileRules(rs []Rule) ([]compiledRule, error) {
	out := make([]compiledRule, 0, len(rs))
	for i, r := range rs {
		at := fmt.Sprintf("rules[%d]", i)
		cr := compiledRule{name: r.Name, action: r.Action, route: r.Route}
		if !r.Route.IsZero() && r.Action != ActionOpen {
			return nil, invalid.Fieldf(at+".route", "only an OPEN rule can route alerts")
		}
		switch r.Match {
		case "", MatchAll:
		case MatchAny:
			cr.any = true
		default:
			return nil, invalid.Fieldf(at+".match", "unknown match mode %q (want ALL or ANY)", r.Match)
		}
		switch r.Action {
		case ActionOpen, ActionClose, ActionIgnore, ActionAcknowledge, ActionNote:
		case "":
			return nil, invalid.Fieldf(at+".action", "action is required (OPEN, CLOSE, IGNORE, ACKNOWLEDGE or NOTE)")
		default:
			return nil, invalid.Fieldf(at+".action", "unknown action %q (want OPEN, CLOSE, IGNORE, ACKNOWLEDGE or NOTE)", r.Action)
		}
		for j, c := range r.Conditions {
			cc, err := compileCondition(fmt.Sprintf("%s.conditions[%d]", at, j), c)
			if err != nil {
				return nil, err
			}
			cr.conds = append(cr.conds, cc)
		}
		out = append(out, cr)
	}
	return out, nil
}

func compileCondition(at string, c Condition) (compiledCond, error) {
	cc := compiledCond{field: -1, caseSensitive: c.CaseSensitive, value: c.Value, values: c.Values}
	switch {
	case c.Field == "" && c.Path == "":
		return cc, invalid.Fieldf(at+".field", "either field or path is required")
	case c.Field != "" && c.Path != "":
		return cc, invalid.Fieldf(at+".path", "set either field or path, not both")
	case c.Field != "":
		cc.field = fieldIndex(c.Field)
		if cc.field < 0 {
			return cc, invalid.Fieldf(at+".field", "unknown field %q (want one of sourceId, sourceName, subject, severity, url, details)", c.Field)
		}
	default:
		p, err := parsePath(c.Path)
		if err != nil {
			return cc, invalid.Fieldf(at+".path", "%s", err)
		}
		cc.path = p
	}

	base, negate, ok := splitOp(c.Op)
	if !ok {
		if c.Op == "" {
			return cc, invalid.Fieldf(at+".op", "op is required")
		}
		return cc, invalid.Fieldf(at+".op", "unknown op %q", c.Op)
	}
	cc.op, cc.negate = base, negate

	switch base {
	case OpMatches:
		expr := c.Value
		if !c.CaseSensitive {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return cc, invalid.Fieldf(at+".value", "invalid regular expression: %s", err)
		}
		cc.re = re
	case OpIn:
		if len(c.Values) == 0 {
			return cc, invalid.Fieldf(at+".values", "%s needs at least one value", c.Op)
		}
	}
	if !c.CaseSensitive {
		cc.value = toLower(c.Value)
	}
	return cc, nil
}

// splitOp reduces every operator to its positive form plus a negation flag,
// so evaluation only implements five tests.
func splitOp(op Op) (base Op, negate, ok bool) {
	switch op {
	case OpEquals, OpContains, OpMatches, OpExists, OpIn:
		return op, false, true
	case OpNotEquals:
		return OpEquals, true, true
	case OpNotContains:
		return OpContains, true, true
	case OpNotMatches:
		return OpMatches, true, true
	case OpNotExists:
		return OpExists, true, true
	case OpNotIn:
		return OpIn, true, true
	}
	return "", false, false
}
