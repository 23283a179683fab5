package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// MaxSteps bounds the work of mapping and evaluating one message, so that
// no body and no ruleset can hold a worker for long: a descendant path
// ($..x) over a deeply nested body, or one nested in another, grows with
// the square or the cube of the body. A step is a node visited or
// selected, a filter tested on a node, or stepBytes bytes of text made or
// compared. Counting steps, not time, keeps the outcome the same on every
// machine and on every try. A real message takes a few hundred steps.
const MaxSteps = 500_000

// stepBytes is how much text counts as one step.
const stepBytes = 64

// ErrTooCostly is the outcome of a message whose mapping and rules would
// take more than MaxSteps.
var ErrTooCostly = fmt.Errorf("mapping failed: the mapping and rules need more than %d steps for this body "+
	"(JSONPath with .. or * over a large or deeply nested body); use paths that name their fields, or send a smaller body", MaxSteps)

// budget is what is left of one message's steps. Once it runs out every
// selection stops and returns nothing; the caller then reports
// ErrTooCostly instead of what it found.
type budget struct {
	left int
}

func newBudget(steps int) *budget { return &budget{left: steps} }

// spend takes n steps and reports whether any are left.
func (b *budget) spend(n int) bool {
	b.left -= n
	return b.left >= 0
}

func (b *budget) exhausted() bool { return b.left < 0 }

// spendText takes the steps for making or comparing s.
func (b *budget) spendText(s string) bool { return b.spend(1 + len(s)/stepBytes) }

// node is one selected value and, when document order is needed, where it
// sits in the body.
type node struct {
	value any
	at    *place
}

// place is a location in the body as a chain back to the root, so that a
// selection shares its parents' locations instead of copying them.
type place struct {
	parent *place
	step   spec.NormalSelector
	depth  int
}

func (p *place) child(step spec.NormalSelector) *place {
	return &place{parent: p, step: step, depth: p.length() + 1}
}

// length is how many steps down from the root the place is.
func (p *place) length() int {
	if p == nil {
		return 0
	}
	return p.depth
}

// path spells the place out, root first.
func (p *place) path() spec.NormalizedPath {
	out := make(spec.NormalizedPath, p.length())
	for q := p; q != nil; q = q.parent {
		out[q.depth-1] = q.step
	}
	return out
}

// selectAll runs q over root within b. With located set every node keeps
// its place. Objects are walked in key order, so the same body always
// costs the same steps and gives its nodes in the same order.
func (b *budget) selectAll(q *spec.PathQuery, root any, located bool) []node {
	cur := []node{{value: root}}
	for _, seg := range q.Segments() {
		var next []node
		for _, n := range cur {
			if seg.IsDescendant() {
				next = b.descend(seg.Selectors(), n, root, located, next)
			} else {
				next = b.apply(seg.Selectors(), n, root, located, next)
			}
			if b.exhausted() {
				return nil
			}
		}
		cur = next
	}
	return cur
}

// descend applies sels to n and to every node below it, n first.
func (b *budget) descend(sels []spec.Selector, n node, root any, located bool, out []node) []node {
	if !b.spend(1) {
		return out
	}
	out = b.apply(sels, n, root, located, out)
	b.children(n, located, func(c node) bool {
		out = b.descend(sels, c, root, located, out)
		return !b.exhausted()
	})
	return out
}

// apply adds what each selector picks out of n to out.
func (b *budget) apply(sels []spec.Selector, n node, root any, located bool, out []node) []node {
	for _, sel := range sels {
		if b.exhausted() {
			return out
		}
		switch sel := sel.(type) {
		case spec.Name:
			if obj, ok := n.value.(map[string]any); ok {
				if v, ok := obj[string(sel)]; ok && b.spend(1) {
					out = append(out, b.at(n, located, sel, v))
				}
			}
		case spec.Index:
			if arr, ok := n.value.([]any); ok {
				i := int(sel)
				if i < 0 {
					i += len(arr)
				}
				if i >= 0 && i < len(arr) && b.spend(1) {
					out = append(out, b.at(n, located, spec.Index(i), arr[i]))
				}
			}
		case spec.SliceSelector:
			arr, ok := n.value.([]any)
			if !ok {
				continue
			}
			lower, upper := sel.Bounds(len(arr))
			switch step := sel.Step(); {
			case step > 0:
				for i := lower; i < upper && b.spend(1); i += step {
					out = append(out, b.at(n, located, spec.Index(i), arr[i]))
				}
			case step < 0:
				for i := upper; lower < i && b.spend(1); i += step {
					out = append(out, b.at(n, located, spec.Index(i), arr[i]))
				}
			}
		case spec.WildcardSelector:
			b.children(n, located, func(c node) bool {
				if b.spend(1) {
					out = append(out, c)
				}
				return !b.exhausted()
			})
		case *spec.FilterSelector:
			// Filters test single values only (see checkFilters), so one
			// test is a step.
			b.children(n, located, func(c node) bool {
				if b.spend(1) && passes(sel, c.value, root) {
					out = append(out, c)
				}
				return !b.exhausted()
			})
		default:
			// Every selector of RFC 9535 is handled above; one added to
			// the library later selects nothing rather than unbounded.
		}
	}
	return out
}

// passes shields the evaluation from panics inside the JSONPath library,
// which has internal panic sites: a filter that panics passes nothing.
func passes(f *spec.FilterSelector, v, root any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return f.Eval(v, root)
}

// children calls yield with each child of n, in document order for
// arrays and key order for objects, until it returns false.
func (b *budget) children(n node, located bool, yield func(node) bool) {
	switch v := n.value.(type) {
	case []any:
		for i, c := range v {
			if !yield(b.at(n, located, spec.Index(i), c)) {
				return
			}
		}
	case map[string]any:
		// Sorting is work too.
		if !b.spend(len(v)) {
			return
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !yield(b.at(n, located, spec.Name(k), v[k])) {
				return
			}
		}
	}
}

func (b *budget) at(parent node, located bool, step spec.NormalSelector, v any) node {
	if !located {
		return node{value: v}
	}
	return node{value: v, at: parent.at.child(step)}
}

// firstInDocument picks the node whose place comes first in the body: a
// query's nodes come in the order its segments found them, which is not
// the body's.
func (b *budget) firstInDocument(nodes []node) (node, bool) {
	if len(nodes) == 0 {
		return node{}, false
	}
	first, firstPath := nodes[0], nodes[0].at.path()
	for _, n := range nodes[1:] {
		if !b.spend(1 + n.at.length()) {
			return node{}, false
		}
		if p := n.at.path(); p.Compare(firstPath) < 0 {
			first, firstPath = n, p
		}
	}
	return first, true
}

// errCostlyFilter refuses, when a ruleset or mapping is saved, filters
// whose test on one node could itself walk the body.
var errCostlyFilter = errors.New("a filter may only test single values such as @.status, @[0] or $.labels.team " +
	"(no .., *, slices, lists or filters inside [?…]), since it runs once for every node it filters")

// checkFilters refuses a path whose filters test anything but single
// values. The library keeps a filter's parts to itself, so this reads
// its canonical text, outside string literals.
func checkFilters(p *jsonpath.Path) error {
	for _, seg := range p.Query().Segments() {
		for _, sel := range seg.Selectors() {
			f, ok := sel.(*spec.FilterSelector)
			if !ok {
				continue
			}
			if !singularOnly(strings.TrimPrefix(f.String(), "?")) {
				return errCostlyFilter
			}
		}
	}
	return nil
}

// singularOnly reports whether a filter's text, as the library writes it
// (names as double-quoted strings), holds only queries that select at
// most one node.
func singularOnly(expr string) bool {
	inString, escaped, brackets := false, false, 0
	for i := 0; i < len(expr); i++ {
		c := expr[i]
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '*', c == '.' && i+1 < len(expr) && expr[i+1] == '.':
			return false
		case c == '[':
			brackets++
		case c == ']':
			brackets--
		case brackets > 0 && (c == ',' || c == ':' || c == '?'):
			return false
		}
	}
	return true
}
