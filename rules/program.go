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

// Compile validates m and rs, then compiles them. Errors are *FieldError.
func Compile(m Mapping, rs []Rule) (*Program, error) {
	mp, err := compileMapping(m)
	if err != nil {
		return nil, err
	}
	cr, err := compileRules(rs)
	if err != nil {
		return nil, err
	}
	return &Program{mapping: mp, rules: cr}, nil
}

// Evaluate maps msg's fields and runs the rules; the first matching rule wins.
func (p *Program) Evaluate(msg *Message) Decision {
	d := Decision{RuleIndex: -1, Detail: "no rule matched"}
	if p == nil {
		return d
	}
	var root any
	if msg != nil {
		root = msg.root
	}
	d.Fields = p.mapFields(root)
	vals := fieldValues(&d.Fields)
	for i, r := range p.rules {
		if r.matches(root, vals) {
			d.Action, d.RuleIndex, d.RuleName, d.Route = r.action, i, r.name, r.route
			d.Detail = fmt.Sprintf("rule %d %q matched: %s", i+1, r.name, r.action)
			break
		}
	}
	return d
}

func (r *compiledRule) matches(root any, vals []string) bool {
	if len(r.conds) == 0 {
		return true
	}
	for i := range r.conds {
		ok := r.conds[i].holds(root, vals)
		if r.any && ok {
			return true
		}
		if !r.any && !ok {
			return false
		}
	}
	return !r.any
}

func (c *compiledCond) holds(root any, vals []string) bool {
	return c.positive(root, vals) != c.negate
}

// positive evaluates the un-negated operator. On a path, EXISTS looks for a
// non-null node and the other ops hold if any node's text satisfies them.
func (c *compiledCond) positive(root any, vals []string) bool {
	if c.path == nil {
		v := vals[c.field]
		if c.op == OpExists {
			return v != ""
		}
		return c.test(v)
	}
	for _, n := range selectNodes(c.path, root) {
		if c.op == OpExists {
			if n != nil {
				return true
			}
			continue
		}
		if c.test(stringify(n)) {
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

// selectNodes shields Evaluate from panics inside the JSONPath library, which
// has internal panic sites; a broken query then selects nothing instead of
// taking down the webhook handler.
func selectNodes(p *jsonpath.Path, root any) (nodes jsonpath.NodeList) {
	defer func() {
		if recover() != nil {
			nodes = nil
		}
	}()
	return p.Select(root)
}

func toLower(s string) string { return strings.ToLower(s) }
