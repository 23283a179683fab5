package rules

// opsgeniePreset reads the requests of Opsgenie's Alert API as the drop-in
// API stores them: the request's JSON with "action" (create, close,
// acknowledge, addNote), for the last three the "alias" of the alert they
// name, and for create the "severity" its priority (P1 to P5) stands for.
// alias is the dedup key.
func opsgeniePreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.alias"},
		SourceName: []string{"$.entity", "$.source"},
		Subject:    []string{"$.message"},
		Severity:   []string{"$.severity", "$.priority"},
		URL:        []string{"$.details.url"},
		// An add-note request's note is its details: the note's text.
		Details: []string{"$.description", "$.note", "$.details"},
	}
	rs := []Rule{
		{
			Name:       "Close on close",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "close"}},
			Action:     ActionClose,
		},
		{
			Name:       "Acknowledge on acknowledge",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "acknowledge"}},
			Action:     ActionAcknowledge,
		},
		{
			Name:       "Note on addNote",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "addNote"}},
			Action:     ActionNote,
		},
		{
			Name:       "Open on create",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "create"}},
			Action:     ActionOpen,
		},
	}
	return m, rs
}
