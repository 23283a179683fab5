package rules

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/theory/jsonpath"
)

// Program is a compiled mapping and ruleset. It holds no mutable state, so
// one value is safe for concurrent use and is meant to be cached per
// integration.
type Program struct {
	mapping [][]mappedPath // indexed like fieldNames
	rules   []compiledRule
	// needsFacts says a condition tests a fact (see Facts).
	needsFacts bool
}

type compiledRule struct {
	name   string
	any    bool
	action Action
	route  Route
	conds  []compiledCond
}

type compiledCond struct {
	field         int            // index into fieldNames, or -1 when path is set
	path          *jsonpath.Path // nil when field is set
	op            Op             // always a positive op; see negate
	negate        bool
	value         string // lower-cased unless caseSensitive
	values        []string
	re            *regexp.Regexp
	caseSensitive bool
}

// Compile validates m and rs, then compiles them. Errors are *invalid.Field.
func Compile(m Mapping, rs []Rule) (*Program, error) {
	mp, err := compileMapping(m)
	if err != nil {
		return nil, err
	}
	cr, err := compileRules(rs)
	if err != nil {
		return nil, err
	}
	prog := &Program{mapping: mp, rules: cr}
	for _, r := range cr {
		for _, c := range r.conds {
			prog.needsFacts = prog.needsFacts || isFact(c.field)
		}
	}
	return prog, nil
}

// NeedsFacts says whether a rule tests a fact, so that the caller must
// look the facts up before evaluating; without one, Facts{} will do.
func (p *Program) NeedsFacts() bool { return p != nil && p.needsFacts }

// Evaluate maps msg's fields and runs the rules with no facts known; the
// first matching rule wins. A message that would take more than MaxSteps
// gets a Decision with Err set to ErrTooCostly.
func (p *Program) Evaluate(msg *Message) Decision {
	return p.evaluate(msg, Facts{}, newBudget(MaxSteps))
}

// EvaluateWith is Evaluate with the facts the caller knows about msg.
func (p *Program) EvaluateWith(msg *Message, facts Facts) Decision {
	return p.evaluate(msg, facts, newBudget(MaxSteps))
}

// MapFields maps msg's fields alone, so that the caller can look up the
// facts of its source; ok is false when that costs more than MaxSteps.
func (p *Program) MapFields(msg *Message) (f Fields, ok bool) {
	if p == nil || msg == nil {
		return Fields{}, p != nil
	}
	b := newBudget(MaxSteps)
	f = p.mapFields(msg.root, b)
	return f, !b.exhausted()
}

func (p *Program) evaluate(msg *Message, facts Facts, b *budget) Decision {
	d := Decision{RuleIndex: -1, Detail: "no rule matched"}
	if p == nil {
		return d
	}
	var root any
	if msg != nil {
		root = msg.root
	}
	tooCostly := Decision{RuleIndex: -1, Detail: ErrTooCostly.Error(), Err: ErrTooCostly}
	d.Fields = p.mapFields(root, b)
	if b.exhausted() {
		return tooCostly
	}
	vals := fieldValues(&d.Fields)
	if p.needsFacts {
		vals = facts.values(vals)
	}
	for i, r := range p.rules {
		matched := r.matches(root, vals, b)
		if b.exhausted() {
			return tooCostly
		}
		if matched {
			d.Action, d.RuleIndex, d.RuleName, d.Route = r.action, i, r.name, r.route
			if r.route.Severity != "" {
				d.Fields.Severity = r.route.Severity
			}
			d.Detail = fmt.Sprintf("rule %d %q matched: %s", i+1, r.name, r.action)
			break
		}
	}
	return d
}

func (r *compiledRule) matches(root any, vals []string, b *budget) bool {
	if len(r.conds) == 0 {
		return true
	}
	for i := range r.conds {
		ok := r.conds[i].holds(root, vals, b)
		if b.exhausted() {
			return false
		}
		if r.any && ok {
			return true
		}
		if !r.any && !ok {
			return false
		}
	}
	return !r.any
}

func (c *compiledCond) holds(root any, vals []string, b *budget) bool {
	return c.positive(root, vals, b) != c.negate
}

// positive evaluates the un-negated operator. On a path, EXISTS looks for a
// non-null node and the other ops hold if any node's text satisfies them.
func (c *compiledCond) positive(root any, vals []string, b *budget) bool {
	if c.path == nil {
		v := vals[c.field]
		if c.op == OpExists {
			return v != ""
		}
		return b.spendText(v) && c.test(v)
	}
	for _, n := range b.selectAll(c.path.Query(), root, false) {
		if c.op == OpExists {
			if n.value != nil {
				return true
			}
			continue
		}
		s := stringify(n.value)
		if !b.spendText(s) {
			return false
		}
		if c.test(s) {
			return true
		}
	}
	return false
}

func (c *compiledCond) test(s string) bool {
	switch c.op {
	case OpEquals:
		if c.caseSensitive {
			return s == c.value
		}
		return strings.EqualFold(s, c.value)
	case OpContains:
		if c.caseSensitive {
			return strings.Contains(s, c.value)
		}
		return strings.Contains(toLower(s), c.value)
	case OpMatches:
		return c.re.MatchString(s)
	case OpIn:
		for _, v := range c.values {
			if s == v || (!c.caseSensitive && strings.EqualFold(s, v)) {
				return true
			}
		}
	}
	return false
}

func toLower(s string) string { return strings.ToLower(s) }
