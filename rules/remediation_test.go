package rules

import "testing"

func TestRemediationValidate(t *testing.T) {
	for _, c := range []struct {
		r     Remediation
		field string
	}{
		{Remediation{{"critical", 2}, {"high", 7}, {"medium", 30}}, ""},
		{nil, ""},
		{Remediation{{"urgent", 2}}, "remediation[0].severity"},
		{Remediation{{"high", 7}, {"high", 3}}, "remediation[1].severity"},
		{Remediation{{"high", 0}}, "remediation[0].days"},
		{Remediation{{"low", 3651}}, "remediation[0].days"},
	} {
		checkFieldError(t, c.r.Validate(), c.field)
	}
	if got := (Remediation{{" High ", 7}}).Normalize(); got[0].Severity != "high" {
		t.Fatalf("normalized to %q", got[0].Severity)
	}
}

func TestSeverityRank(t *testing.T) {
	order := []string{"whatever", "info", "low", "medium", "high", "critical"}
	for i := 1; i < len(order); i++ {
		if SeverityRank(order[i]) <= SeverityRank(order[i-1]) {
			t.Fatalf("%s does not outrank %s", order[i], order[i-1])
		}
	}
	if d := (Remediation{{"critical", 2}, {"high", 7}}).DaysFor("high"); d != 7 {
		t.Fatalf("high: %d days", d)
	}
	if d := (Remediation{{"critical", 2}}).DaysFor("medium"); d != 0 {
		t.Fatalf("medium: %d days", d)
	}
	if got, want := SeverityRankSQL("severity"), "CASE severity WHEN 'critical' THEN 5 WHEN 'high' THEN 4 WHEN 'medium' THEN 3 WHEN 'low' THEN 2 WHEN 'info' THEN 1 ELSE 0 END"; got != want {
		t.Fatalf("SQL %s", got)
	}
}
