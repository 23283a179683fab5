package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/notifiers"
)

// channelSettings is how each notification channel reaches its provider.
// A channel whose settings are missing stays disabled: its notifications
// are recorded as failed with "channel not configured".
type channelSettings struct {
	SMTPURL  string
	SMTPFrom string

	TwilioAccountSID string
	TwilioAuthToken  string
	TwilioFrom       string
	TwilioAPIURL     string

	WebhookSecret string

	NtfyURL   string
	NtfyToken string

	PushSubscriber string

	// SMSRateLimit is the least time between two texts or calls to one
	// number; 0 turns the limit off.
	SMSRateLimit time.Duration

	// The Slack app: pages with buttons that act, on when both the
	// signing secret and the bot token are set.
	SlackSigningSecret string
	SlackBotToken      string
	SlackAPIURL        string

	// OutboundAllow lists the comma-separated CIDR ranges that webhooks,
	// chat, ntfy and push may reach beyond the public internet, for
	// receivers on the premises; see guard.
	OutboundAllow string
}

func (c *channelSettings) bind(s *settings) {
	s.string(&c.SMTPURL, "smtp-url", "KLAXON_SMTP_URL", "", "email relay, smtp://user:pass@host:587?tls=starttls (tls: none, starttls or implicit; smtps:// means implicit)")
	s.string(&c.SMTPFrom, "smtp-from", "KLAXON_SMTP_FROM", "", "sender of notification email, e.g. Klaxon <klaxon@example.com>")
	s.string(&c.TwilioAccountSID, "twilio-account-sid", "KLAXON_TWILIO_ACCOUNT_SID", "", "Twilio account for SMS and voice")
	s.string(&c.TwilioAuthToken, "twilio-auth-token", "KLAXON_TWILIO_AUTH_TOKEN", "", "Twilio auth token; also verifies Twilio's callbacks")
	s.string(&c.TwilioFrom, "twilio-from", "KLAXON_TWILIO_FROM", "", "Twilio number SMS and calls come from, E.164")
	s.string(&c.TwilioAPIURL, "twilio-api-url", "KLAXON_TWILIO_API_URL", notifiers.DefaultTwilioAPIURL, "Twilio API base URL")
	s.string(&c.WebhookSecret, "webhook-secret", "KLAXON_WEBHOOK_SECRET", "", "HMAC-SHA256 key signing outbound webhooks (X-Klaxon-Signature); unsigned when empty")
	s.string(&c.NtfyURL, "ntfy-url", "KLAXON_NTFY_URL", notifiers.DefaultNtfyServer, "ntfy server that bare topic names are published on")
	s.string(&c.NtfyToken, "ntfy-token", "KLAXON_NTFY_TOKEN", "", "ntfy access token, for protected topics")
	s.string(&c.PushSubscriber, "push-subscriber", "KLAXON_PUSH_SUBSCRIBER", "", "contact push services are given for this server (mailto: or https URL); enables Web Push")
	s.string(&c.OutboundAllow, "outbound-allow", "KLAXON_OUTBOUND_ALLOW", "", "comma-separated CIDR ranges outside the public internet that webhook, chat, ntfy and push destinations may reach (e.g. 10.20.0.0/16 for a receiver on the premises)")
	s.string(&c.SlackSigningSecret, "slack-signing-secret", "KLAXON_SLACK_SIGNING_SECRET", "", "Slack app signing secret; verifies button presses posted to /slack/actions")
	s.string(&c.SlackBotToken, "slack-bot-token", "KLAXON_SLACK_BOT_TOKEN", "", "Slack app bot token (xoxb-…) with chat:write, users:read and users:read.email; with the signing secret, enables SLACK_APP")
	s.string(&c.SlackAPIURL, "slack-api-url", "KLAXON_SLACK_API_URL", notifiers.DefaultSlackAPIURL, "Slack Web API base URL")
	s.duration(&c.SMSRateLimit, "sms-rate-limit", "KLAXON_SMS_RATE_LIMIT", alerting.DefaultRateLimits()[db.ContactSMS], "least time between two SMS or calls to one number; alerts held back meanwhile go out as one message; 0 disables")
}

// rateLimits is the per-contact-method rate limit of each channel.
func (c channelSettings) rateLimits() map[db.ContactType]time.Duration {
	return map[db.ContactType]time.Duration{db.ContactSMS: c.SMSRateLimit, db.ContactVoice: c.SMSRateLimit}
}

// guard is what the destinations users enter may reach: public
// addresses, and the ranges in OutboundAllow. One guard serves every
// channel and the check when a contact method is saved.
func (c channelSettings) guard() (*egress.Guard, error) {
	allow, err := egress.ParseAllow(c.OutboundAllow)
	if err != nil {
		return nil, fmt.Errorf("KLAXON_OUTBOUND_ALLOW: %w", err)
	}
	return egress.New(allow, nil), nil
}

// slackApp is the Slack app's Web API client, or nil when the app is
// not configured.
func (c channelSettings) slackApp() *notifiers.SlackAPI {
	if c.SlackSigningSecret == "" || c.SlackBotToken == "" {
		return nil
	}
	return notifiers.NewSlackAPI(c.SlackAPIURL, c.SlackBotToken)
}

// senders builds a sender for every configured channel. Chat, ntfy and
// outbound webhooks need no account, so they are always on; they and
// Web Push reach only what guard allows.
func (c channelSettings) senders(ctx context.Context, store *db.DB, guard *egress.Guard, publicURL string, now time.Time, log *slog.Logger) (notifiers.Senders, error) {
	if guard == nil {
		guard = egress.New(nil, nil)
	}
	// A self-hosted ntfy server on the private network is reached through
	// the guard like any topic URL; say so at start rather than in every
	// failed notification.
	if err := guard.CheckURL(c.NtfyURL); err != nil {
		log.WarnContext(ctx, "KLAXON_NTFY_URL is on an address outbound requests may not reach; list its range in KLAXON_OUTBOUND_ALLOW", "err", err)
	}
	webhook := notifiers.NewWebhook(guard)
	if c.WebhookSecret != "" {
		webhook = notifiers.NewSignedWebhook(guard, c.WebhookSecret)
	}
	ntfy, err := notifiers.NewNtfy(notifiers.NtfyConfig{ServerURL: c.NtfyURL, Token: c.NtfyToken, Guard: guard})
	if err != nil {
		return nil, fmt.Errorf("KLAXON_NTFY_URL: %w", err)
	}
	senders := notifiers.Senders{
		db.ContactWebhook: webhook,
		db.ContactSlack:   notifiers.NewSlack(guard),
		db.ContactTeams:   notifiers.NewTeams(guard),
		db.ContactNtfy:    ntfy,
	}
	mattermostKey, err := notifiers.StoredMattermostKey(ctx, store, now)
	if err != nil {
		return nil, err
	}
	senders[db.ContactMattermost] = notifiers.NewMattermost(guard, strings.TrimRight(publicURL, "/")+"/mattermost/actions", mattermostKey, time.Now)
	if api := c.slackApp(); api != nil {
		senders[db.ContactSlackApp] = &notifiers.SlackApp{API: api}
	}
	if c.SMTPURL != "" {
		emailCfg, err := notifiers.ParseSMTPURL(c.SMTPURL, c.SMTPFrom)
		if err != nil {
			return nil, fmt.Errorf("KLAXON_SMTP_URL: %w", err)
		}
		email, err := notifiers.NewEmail(emailCfg)
		if err != nil {
			return nil, fmt.Errorf("email channel: %w", err)
		}
		senders[db.ContactEmail] = email
	}
	if c.TwilioAccountSID != "" || c.TwilioAuthToken != "" || c.TwilioFrom != "" {
		twilio := notifiers.TwilioConfig{
			AccountSID: c.TwilioAccountSID, AuthToken: c.TwilioAuthToken, From: c.TwilioFrom, APIURL: c.TwilioAPIURL,
			StatusCallbackURL: strings.TrimRight(publicURL, "/") + "/twilio/status",
			GatherActionURL:   strings.TrimRight(publicURL, "/") + "/twilio/voice",
		}
		sms, err := notifiers.NewTwilioSMS(twilio)
		if err != nil {
			return nil, fmt.Errorf("SMS channel: %w", err)
		}
		voice, err := notifiers.NewTwilioVoice(twilio)
		if err != nil {
			return nil, fmt.Errorf("voice channel: %w", err)
		}
		senders[db.ContactSMS], senders[db.ContactVoice] = sms, voice
	}
	if c.PushSubscriber != "" {
		public, private, err := notifiers.StoredVAPIDKeys(ctx, store, now)
		if err != nil {
			return nil, err
		}
		push, err := notifiers.NewWebPush(notifiers.WebPushConfig{VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: c.PushSubscriber, Guard: guard})
		if err != nil {
			return nil, fmt.Errorf("push channel: %w", err)
		}
		senders[db.ContactPush] = push
	}
	enabled := make([]string, 0, len(senders))
	for channel := range senders {
		enabled = append(enabled, string(channel))
	}
	log.InfoContext(ctx, "notification channels", "enabled", enabled)
	return senders, nil
}
