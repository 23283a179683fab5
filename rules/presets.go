package rules

// Preset returns the default mapping and ruleset for an integration type; ok
// is false for an unknown type. Each call returns fresh values, so callers may
// edit them freely.
func Preset(t IntegrationType) (m Mapping, rs []Rule, ok bool) {
	switch t {
	case TypeDetectify:
		m, rs = detectifyPreset()
	case TypeGeneric:
		m, rs = genericPreset()
	case TypeAlertmanager:
		m, rs = alertmanagerPreset()
	case TypePagerDuty:
		m, rs = pagerDutyPreset()
	case TypeOpsgenie:
		m, rs = opsgeniePreset()
	case TypeEmail:
		m, rs = emailPreset()
	default:
		return Mapping{}, nil, false
	}
	return m, rs, true
}

// detectifyPreset covers the current webhook ("event_type" plus a "finding"
// object), the legacy per-scan-profile webhook ("event" =
// "event_finding_high", flat fields) and the API finding shape. Scan events
// carry no severity and so match no finding rule; a completed scan is a
// pulse, keyed by its scan profile's name (the sourceName), so an
// integration with scanHeartbeatHours notices a profile that stopped
// scanning. The legacy webhook is one subscription per scan profile and
// names none: its pulses share the integration's default key.
func detectifyPreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.finding.uuid", "$.finding_uuid", "$.uuid", "$.finding_url"},
		SourceName: []string{"$.finding.asset", "$.asset.name", "$.asset", "$.host", "$.scan.scan_profile_name"},
		Subject:    []string{"$.finding.title", "$.title"},
		// The legacy event name is last: normalization turns
		// "event_finding_high" into "high".
		Severity: []string{"$.finding.severity", "$.severity", "$.event"},
		URL:      []string{"$.finding.links.details_page", "$.links.details_page", "$.finding_url", "$.finding.url", "$.found_at"},
		Details:  []string{"$.finding.description", "$.definition.description", "$.description"},
	}
	rs := []Rule{
		{
			Name:       "Open high, medium and critical findings",
			Conditions: []Condition{{Field: "severity", Op: OpMatches, Value: "critical|high|medium"}},
			Action:     ActionOpen,
		},
		{
			Name:       "Close when severity drops to low",
			Conditions: []Condition{{Field: "severity", Op: OpEquals, Value: "low"}},
			Action:     ActionClose,
		},
		{
			Name:  "Count completed scans as pulses",
			Match: MatchAny,
			Conditions: []Condition{
				{Path: "$.event_type", Op: OpEquals, Value: "scan_completed"},
				{Path: "$.event", Op: OpEquals, Value: "event_scan_finished"},
			},
			Action: ActionPulse,
		},
	}
	return m, rs
}

// genericPreset reads the shape documented in doc.go.
func genericPreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.dedup_key"},
		SourceName: []string{"$.source"},
		Subject:    []string{"$.summary", "$.title"},
		Severity:   []string{"$.severity"},
		URL:        []string{"$.url"},
		Details:    []string{"$.details", "$.description"},
	}
	rs := []Rule{
		{
			Name:       "Close when action is close",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "close"}},
			Action:     ActionClose,
		},
		{
			Name:       "Ignore when action is ignore",
			Conditions: []Condition{{Path: "$.action", Op: OpEquals, Value: "ignore"}},
			Action:     ActionIgnore,
		},
		{
			// Catch-all: a missing action means open.
			Name:   "Open everything else",
			Action: ActionOpen,
		},
	}
	return m, rs
}

// alertmanagerPreset reads the Prometheus Alertmanager webhook (version 4).
// groupKey identifies the alert group, which is what Alertmanager itself
// notifies about, so one group maps to one alert.
func alertmanagerPreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.groupKey"},
		SourceName: []string{"$.commonLabels.instance", "$.commonLabels.job", "$.receiver"},
		Subject: []string{
			"$.commonAnnotations.summary", "$.commonLabels.alertname",
			"$.alerts[0].annotations.summary", "$.alerts[0].labels.alertname",
		},
		Severity: []string{"$.commonLabels.severity", "$.alerts[0].labels.severity"},
		URL:      []string{"$.externalURL", "$.alerts[0].generatorURL"},
		Details:  []string{"$.commonAnnotations.description", "$.alerts[0].annotations.description"},
	}
	rs := []Rule{
		{
			Name:       "Close when resolved",
			Conditions: []Condition{{Path: "$.status", Op: OpEquals, Value: "resolved"}},
			Action:     ActionClose,
		},
		{
			Name:       "Open when firing",
			Conditions: []Condition{{Path: "$.status", Op: OpEquals, Value: "firing"}},
			Action:     ActionOpen,
		},
	}
	return m, rs
}

// pagerDutyPreset reads PagerDuty Events API v2 bodies. routing_key is
// deliberately not mapped: it is a credential.
func pagerDutyPreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.dedup_key"},
		SourceName: []string{"$.payload.source"},
		Subject:    []string{"$.payload.summary"},
		Severity:   []string{"$.payload.severity"},
		URL:        []string{"$.links[0].href", "$.client_url"},
		Details:    []string{"$.payload.custom_details"},
	}
	rs := []Rule{
		{
			Name:       "Close on resolve",
			Conditions: []Condition{{Path: "$.event_action", Op: OpEquals, Value: "resolve"}},
			Action:     ActionClose,
		},
		{
			Name:       "Acknowledge on acknowledge",
			Conditions: []Condition{{Path: "$.event_action", Op: OpEquals, Value: "acknowledge"}},
			Action:     ActionAcknowledge,
		},
		{
			Name:       "Open on trigger",
			Conditions: []Condition{{Path: "$.event_action", Op: OpEquals, Value: "trigger"}},
			Action:     ActionOpen,
		},
	}
	return m, rs
}

// emailPreset reads mail as the SMTP listener stores it (see
// EmailMessage). Mail carries no identifier of the condition it reports,
// so the dedup key is the subject with its digits removed (subjectKey):
// "Disk 91% full on db-1" and "Disk 97% full on db-1" append to one
// alert. An integration that wants another key puts its own path first
// in the mapping's sourceId list, e.g. $.headers['X-Alert-Id'].
func emailPreset() (Mapping, []Rule) {
	m := Mapping{
		SourceID:   []string{"$.subjectKey"},
		SourceName: []string{"$.from"},
		Subject:    []string{"$.subject"},
		Details:    []string{"$.text"},
	}
	rs := []Rule{
		{
			// Catch-all: every mail reports something.
			Name:   "Open every mail",
			Action: ActionOpen,
		},
	}
	return m, rs
}
