package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"
)

// detectifyMessage is the current Detectify webhook body, field for field
// as in rules/testdata/detectify, so the DETECTIFY preset maps it the way
// it maps real traffic: the dedup key is finding.uuid, "high", "medium" and
// "critical" open, "low" closes.
type detectifyMessage struct {
	EventType string           `json:"event_type"`
	Timestamp string           `json:"timestamp"`
	Finding   detectifyFinding `json:"finding"`
}

type detectifyFinding struct {
	UUID             string     `json:"uuid"`
	Title            string     `json:"title"`
	Severity         string     `json:"severity"`
	Status           string     `json:"status"`
	Asset            string     `json:"asset"`
	AssetToken       string     `json:"asset_token"`
	URL              string     `json:"url"`
	Parameter        string     `json:"parameter"`
	Description      string     `json:"description"`
	Remediation      string     `json:"remediation"`
	ScanProfileToken string     `json:"scan_profile_token"`
	ScanSource       string     `json:"scan_source"`
	CVSSScores       cvssScores `json:"cvss_scores"`
	CWE              int        `json:"cwe"`
	Links            links      `json:"links"`
	CreatedAt        string     `json:"created_at"`
	UpdatedAt        string     `json:"updated_at"`
}

type cvssScores struct {
	CVSS31 cvss `json:"cvss_3_1"`
}

type cvss struct {
	Score    float64 `json:"score"`
	Vector   string  `json:"vector"`
	Severity string  `json:"severity"`
}

type links struct {
	DetailsPage string `json:"details_page"`
}

// vulnerability is what stays the same across every message about one
// finding; which one a finding gets is derived from its uuid.
type vulnerability struct {
	title, path, parameter, description, remediation string
	cwe                                              int
}

var vulnerabilities = []vulnerability{
	{"SQL Injection", "/api/users?id=1", "id", "SQL injection detected in the id parameter", "Use parameterized queries for every statement that takes user input.", 89},
	{"Reflected Cross-site Scripting (XSS)", "/search?q=test", "q", "User input in the q parameter is reflected without encoding", "Encode output according to context and set a strict Content-Security-Policy.", 79},
	{"Remote Code Execution", "/upload", "file", "Arbitrary code execution via file upload", "Validate uploaded file types and store uploads outside the web root.", 94},
	{"Server-Side Request Forgery", "/fetch?url=http://example.com", "url", "The url parameter makes the server fetch arbitrary addresses", "Allow-list outbound destinations and block link-local ranges.", 918},
	{"Open Redirect", "/login?next=/home", "next", "The next parameter redirects to any external site", "Only redirect to relative paths or an allow-list of hosts.", 601},
	{"Exposed .git directory", "/.git/config", "", "The .git directory is served and leaks source code", "Deny access to version-control directories in the web server.", 538},
}

var assets = []struct{ name, token string }{
	{"app.example.com", "8d1c0b3a2f4e4b6a9c7d5e3f1a2b4c6d"},
	{"api.example.com", "1f2e3d4c5b6a79880a1b2c3d4e5f6a7b"},
	{"admin.example.com", "9a8b7c6d5e4f30211f2e3d4c5b6a7988"},
	{"shop.example.com", "0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f"},
}

var scores = map[string]cvss{
	"critical": {9.8, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "critical"},
	"high":     {8.6, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N", "high"},
	"medium":   {6.1, "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "medium"},
	"low":      {3.1, "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N", "low"},
}

// openSeverities are the severities a new finding is sent with; a repeat
// keeps "high" and a close is "low", as Detectify does when a finding is
// downgraded.
var openSeverities = []string{"critical", "high", "high", "medium", "medium", "medium"}

// newFindingID returns a random version 4 UUID in lower case, the form
// Detectify uses and the one Klaxon stores as the alert's source id.
func newFindingID(rng *rand.Rand) string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rng.Uint64())
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// detectifyBody renders one message about finding id with severity,
// indented like the samples, which puts it at about 1 KB.
func detectifyBody(id, severity, eventType string, at time.Time) ([]byte, error) {
	h := fnv.New32a()
	h.Write([]byte(id))
	pick := h.Sum32()
	v := vulnerabilities[pick%uint32(len(vulnerabilities))]
	a := assets[(pick/7)%uint32(len(assets))]
	created := at.Add(-time.Duration(pick%3600) * time.Second).UTC().Format(time.RFC3339)
	msg := detectifyMessage{
		EventType: eventType,
		Timestamp: at.UTC().Format(time.RFC3339),
		Finding: detectifyFinding{
			UUID:             id,
			Title:            v.title,
			Severity:         severity,
			Status:           "active",
			Asset:            a.name,
			AssetToken:       a.token,
			URL:              "https://" + a.name + v.path,
			Parameter:        v.parameter,
			Description:      v.description,
			Remediation:      v.remediation,
			ScanProfileToken: "5605b488634efe810dff4276e28ca7f9",
			ScanSource:       "application_scan",
			CVSSScores:       cvssScores{CVSS31: scores[severity]},
			CWE:              v.cwe,
			Links:            links{DetailsPage: "https://detectify.com/dashboard/findings/" + id},
			CreatedAt:        created,
			UpdatedAt:        at.UTC().Format(time.RFC3339),
		},
	}
	body, err := json.MarshalIndent(msg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode detectify message: %w", err)
	}
	return body, nil
}
