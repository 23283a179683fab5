package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
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
	s.duration(&c.SMSRateLimit, "sms-rate-limit", "KLAXON_SMS_RATE_LIMIT", alerting.DefaultRateLimits()[db.ContactSMS], "least time between two SMS or calls to one number; alerts held back meanwhile go out as one message; 0 disables")
}

// rateLimits is the per-contact-method rate limit of each channel.
func (c channelSettings) rateLimits() map[db.ContactType]time.Duration {
	return map[db.ContactType]time.Duration{db.ContactSMS: c.SMSRateLimit, db.ContactVoice: c.SMSRateLimit}
}

// senders builds a sender for every configured channel. Chat, ntfy and
// outbound webhooks need no account, so they are always on.
func (c channelSettings) senders(ctx context.Context, store *db.DB, publicURL string, now time.Time, log *slog.Logger) (notifiers.Senders, error) {
	webhook := notifiers.NewWebhook()
	if c.WebhookSecret != "" {
		webhook = notifiers.NewSignedWebhook(c.WebhookSecret)
	}
	ntfy, err := notifiers.NewNtfy(notifiers.NtfyConfig{ServerURL: c.NtfyURL, Token: c.NtfyToken})
	if err != nil {
		return nil, fmt.Errorf("KLAXON_NTFY_URL: %w", err)
	}
	senders := notifiers.Senders{
		db.ContactWebhook: webhook,
		db.ContactSlack:   notifiers.NewSlack(),
		db.ContactTeams:   notifiers.NewTeams(),
		db.ContactNtfy:    ntfy,
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
		push, err := notifiers.NewWebPush(notifiers.WebPushConfig{VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: c.PushSubscriber})
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
