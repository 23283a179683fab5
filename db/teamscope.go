package db

import "github.com/uptrace/bun"

// TeamScope narrows a list to the things of some owners: those of the
// teams in TeamIDs and, when OrgWide, those of nobody (team NULL). A nil
// scope narrows nothing.
type TeamScope struct {
	TeamIDs []int
	OrgWide bool
}

// Apply adds the scope to q, taking the owner from column, which may be
// any SQL expression that yields a team id or NULL.
func (s *TeamScope) Apply(q *bun.SelectQuery, column string) *bun.SelectQuery {
	if s == nil {
		return q
	}
	switch {
	case len(s.TeamIDs) > 0 && s.OrgWide:
		return q.Where("("+column+" IN (?) OR "+column+" IS NULL)", bun.In(s.TeamIDs))
	case len(s.TeamIDs) > 0:
		return q.Where(column+" IN (?)", bun.In(s.TeamIDs))
	case s.OrgWide:
		return q.Where(column + " IS NULL")
	}
	return q.Where("1 = 0")
}

// Includes reports whether a thing owned by teamID is in the scope.
func (s *TeamScope) Includes(teamID *int) bool {
	if s == nil {
		return true
	}
	if teamID == nil {
		return s.OrgWide
	}
	for _, id := range s.TeamIDs {
		if id == *teamID {
			return true
		}
	}
	return false
}

// TeamChange is the owner an input gives a thing: when Set, TeamID (nil
// is organisation-wide); otherwise the owner stays as it is.
type TeamChange struct {
	Set    bool
	TeamID *int
}

// Apply sets *owner when the change is set.
func (c TeamChange) Apply(owner **int) {
	if c.Set {
		*owner = c.TeamID
	}
}
