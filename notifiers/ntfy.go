package notifiers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/klaxonhq/klaxon/egress"
)

// NtfyConfig configures pushes through an ntfy server.
type NtfyConfig struct {
	// ServerURL is where bare topic names are published; empty means
	// https://ntfy.sh. A destination that is a full URL names its own
	// server.
	ServerURL string
	// Token is an ntfy access token for protected topics; optional.
	Token string
	// Guard decides which addresses topic URLs, and the server itself, may
	// be on; nil means public addresses only. A server on a private
	// network must be in the guard's allow list.
	Guard *egress.Guard
	// Client overrides the HTTP client and its guard; nil means a guarded
	// one with a 10 s timeout.
	Client *http.Client
}

// DefaultNtfyServer is the public ntfy instance.
const DefaultNtfyServer = "https://ntfy.sh"

// Ntfy publishes notifications to an ntfy topic; the contact method's
// value is the topic URL (or a bare topic on the configured server).
type Ntfy struct {
	cfg    NtfyConfig
	client *http.Client
}

// NewNtfy returns an ntfy sender for cfg.
func NewNtfy(cfg NtfyConfig) (*Ntfy, error) {
	if cfg.ServerURL == "" {
		cfg.ServerURL = DefaultNtfyServer
	}
	cfg.ServerURL = strings.TrimRight(cfg.ServerURL, "/")
	if linkURL(cfg.ServerURL) == "" {
		return nil, fmt.Errorf("ntfy config: server URL %q is not an http(s) URL", cfg.ServerURL)
	}
	client := cfg.Client
	if client == nil {
		client = outboundClient(cfg.Guard)
	}
	return &Ntfy{cfg: cfg, client: client}, nil
}

// ntfyMessageMax stays under ntfy's 4096-byte limit, beyond which the
// server turns the body into a file attachment.
const ntfyMessageMax = 4000

// Send publishes msg and returns ntfy's message id.
func (n *Ntfy) Send(ctx context.Context, msg Message) (string, error) {
	endpoint, err := n.topicURL(msg.Destination)
	if err != nil {
		return "", Permanent(fmt.Errorf("send ntfy: %w", err))
	}
	msg = links(msg)
	body := strings.TrimSpace(msg.Details)
	if body == "" {
		body = oneLine(msg.Subject)
	}
	if src := oneLine(msg.SourceName); src != "" {
		body += "\n\nSource: " + src
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(clip(body, ntfyMessageMax)))
	if err != nil {
		// Its text would quote the URL.
		return "", Permanent(errors.New("send ntfy: the topic URL is not valid"))
	}
	h := req.Header
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("User-Agent", "Klaxon")
	// ntfy decodes RFC 2047 headers, which keeps non-ASCII titles intact
	// through proxies that mangle raw UTF-8 header bytes.
	h.Set("Title", mime.BEncoding.Encode("UTF-8", title(msg)))
	h.Set("Priority", ntfyPriority(msg.Severity))
	h.Set("Tags", ntfyTags(msg.Severity))
	if msg.URL != "" {
		h.Set("Click", msg.URL)
	}
	if actions := ntfyActions(msg); actions != "" {
		h.Set("Actions", actions)
	}
	if n.cfg.Token != "" {
		h.Set("Authorization", "Bearer "+n.cfg.Token)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("send ntfy: %w", noAnswer(err))
	}
	defer resp.Body.Close()
	answer := readErrorBody(resp)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		detail := strings.TrimSpace(string(answer))
		var ne struct {
			Code  int    `json:"code"`
			Error string `json:"error"`
		}
		if json.Unmarshal(answer, &ne) == nil && ne.Error != "" {
			detail = fmt.Sprintf("error %d: %s", ne.Code, ne.Error)
		}
		return "", fmt.Errorf("send ntfy: %w", statusError("ntfy", resp, detail))
	}
	var published struct {
		ID string `json:"id"`
	}
	// The message is out either way; an unreadable answer only costs the id.
	_ = json.Unmarshal(answer, &published)
	return published.ID, nil
}

func (n *Ntfy) topicURL(dest string) (string, error) {
	dest = strings.TrimSpace(dest)
	if dest == "" {
		return "", errors.New("empty topic")
	}
	if strings.Contains(dest, "://") {
		if linkURL(dest) == "" {
			return "", errors.New("the topic URL is not an http(s) URL")
		}
		return dest, nil
	}
	if strings.ContainsAny(dest, "/?#") {
		return "", errors.New("the topic name holds /, ? or #")
	}
	return n.cfg.ServerURL + "/" + url.PathEscape(dest), nil
}

// ntfyPriority maps severity onto ntfy's 1 (min) to 5 (max) scale;
// only critical and high get the insistent, do-not-disturb-breaking
// priorities.
func ntfyPriority(severity string) string {
	switch s := strings.ToLower(severity); {
	case strings.Contains(s, "critical"):
		return "5"
	case strings.Contains(s, "high"):
		return "4"
	case strings.Contains(s, "medium"):
		return "3"
	case strings.Contains(s, "low"):
		return "2"
	case strings.Contains(s, "info"):
		return "1"
	default:
		return "3"
	}
}

// ntfyTags names emoji ntfy shows in front of the title, plus a plain
// tag to filter on.
func ntfyTags(severity string) string {
	tags := []string{"klaxon"}
	switch p := ntfyPriority(severity); p {
	case "5", "4":
		tags = append([]string{"rotating_light"}, tags...)
	case "3":
		tags = append([]string{"warning"}, tags...)
	}
	if s := strings.ToLower(oneLine(severity)); s != "" && !strings.ContainsAny(s, ",;") {
		tags = append(tags, s)
	}
	return strings.Join(tags, ",")
}

// ntfyActions renders the action buttons in ntfy's short header form,
// "view, <label>, <url>[, clear=true]; …"; ntfy shows at most three.
func ntfyActions(msg Message) string {
	var actions []string
	if msg.AckURL != "" {
		actions = append(actions, "view, Acknowledge, "+ntfyQuote(msg.AckURL)+", clear=true")
	}
	if msg.CloseURL != "" {
		actions = append(actions, "view, Close, "+ntfyQuote(msg.CloseURL)+", clear=true")
	}
	if msg.URL != "" {
		actions = append(actions, "view, Details, "+ntfyQuote(msg.URL))
	}
	return strings.Join(actions, "; ")
}

// ntfyQuote quotes a value holding the header syntax's separators.
func ntfyQuote(v string) string {
	if !strings.ContainsAny(v, ",;\"'") {
		return v
	}
	if !strings.Contains(v, `"`) {
		return `"` + v + `"`
	}
	// Holding both quote kinds: single-quote it and percent-encode its
	// single quotes, which names the same resource.
	return `'` + strings.ReplaceAll(v, `'`, "%27") + `'`
}
