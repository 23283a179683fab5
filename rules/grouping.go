package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/klaxonhq/klaxon/invalid"
)

// Grouping gathers the alerts an integration opens within WindowMinutes of
// a group's first alert under that alert, when they share a group key.
// By lists what the key is made of: mapped field names (severity,
// sourceName, …) or JSONPath expressions into the body. An empty By puts
// everything opened in the window into one group.
type Grouping struct {
	By            []string `json:"by"`
	WindowMinutes int      `json:"windowMinutes"`
}

const (
	// MaxGroupingWindowMinutes is a day: a longer window would hide a new
	// problem behind one long forgotten.
	MaxGroupingWindowMinutes = 24 * 60
	maxGroupingBy            = 10
)

// Grouper computes group keys; compile it once per integration.
type Grouper struct {
	parts []groupPart
}

// groupPart is one By entry: a mapped field (field >= 0) or a path.
type groupPart struct {
	field int
	path  mappedPath
}

// Validate checks g as an integration's setting.
func (g Grouping) Validate() error {
	_, err := CompileGrouping(g)
	return err
}

// CompileGrouping validates g and compiles its key. Errors are
// *invalid.Field named after the GraphQL input.
func CompileGrouping(g Grouping) (*Grouper, error) {
	if g.WindowMinutes < 1 || g.WindowMinutes > MaxGroupingWindowMinutes {
		return nil, invalid.New("grouping.windowMinutes", fmt.Sprintf("must be 1 to %d", MaxGroupingWindowMinutes))
	}
	if len(g.By) > maxGroupingBy {
		return nil, invalid.New("grouping.by", fmt.Sprintf("takes at most %d entries", maxGroupingBy))
	}
	gr := &Grouper{}
	for i, by := range g.By {
		by = strings.TrimSpace(by)
		if fi := fieldIndex(by); fi >= 0 {
			gr.parts = append(gr.parts, groupPart{field: fi})
			continue
		}
		if !strings.HasPrefix(by, "$") {
			return nil, invalid.Fieldf(fmt.Sprintf("grouping.by[%d]", i), "%q is neither a mapped field (%s) nor a JSONPath starting with $", by, strings.Join(fieldNames, ", "))
		}
		p, err := parsePath(by)
		if err != nil {
			return nil, invalid.Fieldf(fmt.Sprintf("grouping.by[%d]", i), "%s", err)
		}
		gr.parts = append(gr.parts, groupPart{field: -1, path: mappedPath{path: p, many: p.Query().Singular() == nil}})
	}
	return gr, nil
}

// Key is the group key of a message with mapped fields f: the same
// values of the By entries give the same key. It is a digest, so a key
// of long values stays short in the index; "" for an empty By.
func (g *Grouper) Key(msg *Message, f Fields) string {
	if len(g.parts) == 0 {
		return ""
	}
	var root any
	if msg != nil {
		root = msg.root
	}
	vals := fieldValues(&f)
	b := newBudget(MaxSteps)
	h := sha256.New()
	for _, p := range g.parts {
		v := ""
		if p.field >= 0 {
			v = vals[p.field]
		} else if node, ok := firstNode(p.path, root, b); ok {
			v = stringify(node)
		}
		// Lengths first, so that no two lists of values run together
		// into one key.
		fmt.Fprintf(h, "%d:%s", len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil))
}
