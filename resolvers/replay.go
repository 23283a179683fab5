package resolvers

import (
	"cmp"
	"slices"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/graph"
	"github.com/klaxonhq/klaxon/rules"
)

// matchedRule is the rule that decided d, nil when none matched; the one
// shape testIntegration and replayRuleset show it in.
func matchedRule(d rules.Decision) *graph.MatchedRule {
	if d.RuleIndex < 0 {
		return nil
	}
	return &graph.MatchedRule{Position: d.RuleIndex + 1, Name: d.RuleName, Action: d.Action}
}

// outcomeCounts lists counts by status, in the order of the status names,
// so a status ingest learns later needs nothing here.
func outcomeCounts(counts map[db.InboundStatus]int) []*graph.OutcomeCount {
	list := make([]*graph.OutcomeCount, 0, len(counts))
	for status, n := range counts {
		list = append(list, &graph.OutcomeCount{Status: status, Count: n})
	}
	slices.SortFunc(list, func(a, b *graph.OutcomeCount) int { return cmp.Compare(a.Status, b.Status) })
	return list
}
