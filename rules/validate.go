package rules

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/klaxonhq/klaxon/invalid"

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
	for i, n := range factNames {
		if n == name {
			return len(fieldNames) + i
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
		if !r.Route.IsZero() && r.Action == ActionPulse {
			return nil, invalid.Fieldf(at+".route", "a PULSE rule opens no alert, so it has no route: a missed pulse pages the integration's policy and recipients")
		}
		if !r.Route.IsZero() && r.Action != ActionOpen {
			return nil, invalid.Fieldf(at+".route", "only an OPEN rule can route alerts")
		}
		if sev := r.Route.Severity; sev != "" && !slices.Contains(severityWords, sev) {
			return nil, invalid.Fieldf(at+".route.severity", "unknown severity %q (want one of %s)", sev, strings.Join(severityWords, ", "))
		}
		switch r.Match {
		case "", MatchAll:
		case MatchAny:
			cr.any = true
		default:
			return nil, invalid.Fieldf(at+".match", "unknown match mode %q (want ALL or ANY)", r.Match)
		}
		switch r.Action {
		case ActionOpen, ActionClose, ActionIgnore, ActionPulse, ActionAcknowledge, ActionNote:
		case "":
			return nil, invalid.Fieldf(at+".action", "action is required (OPEN, CLOSE, IGNORE, PULSE, ACKNOWLEDGE or NOTE)")
		default:
			return nil, invalid.Fieldf(at+".action", "unknown action %q (want OPEN, CLOSE, IGNORE, PULSE, ACKNOWLEDGE or NOTE)", r.Action)
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
			return cc, invalid.Fieldf(at+".field", "unknown field %q (want one of sourceId, sourceName, subject, severity, url, details, regression)", c.Field)
		}
		if isFact(cc.field) {
			if err := checkFactCondition(at, c); err != nil {
				return cc, err
			}
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
