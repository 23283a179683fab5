package notifiers

import (
	"errors"
	"testing"
	"time"
)

// Slack's published example of request signing
// (api.slack.com/authentication/verifying-requests-from-slack): a slash
// command's body, signed with the example secret.
const (
	slackExampleSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	slackExampleTimestamp = "1531420618"
	slackExampleBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	slackExampleSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func TestVerifySlackSignatureWithSlacksExample(t *testing.T) {
	signedAt := time.Unix(1531420618, 0)
	if err := VerifySlackSignature(slackExampleSecret, slackExampleTimestamp, []byte(slackExampleBody), slackExampleSignature, signedAt); err != nil {
		t.Fatalf("Slack's example refused: %v", err)
	}
	for name, c := range map[string]struct {
		secret, timestamp, body, signature string
		now                                time.Time
	}{
		"other secret":           {"8f742231b10e8888abcd99yyyzzz85a6", slackExampleTimestamp, slackExampleBody, slackExampleSignature, signedAt},
		"body changed":           {slackExampleSecret, slackExampleTimestamp, slackExampleBody + "&x=1", slackExampleSignature, signedAt},
		"timestamp changed":      {slackExampleSecret, "1531420619", slackExampleBody, slackExampleSignature, signedAt},
		"signature upper-cased":  {slackExampleSecret, slackExampleTimestamp, slackExampleBody, "v0=A2114D57B48EAC39B9AD189DD8316235A7B4A8D21A10BD27519666489C69B503", signedAt},
		"other version":          {slackExampleSecret, slackExampleTimestamp, slackExampleBody, "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", signedAt},
		"no signature":           {slackExampleSecret, slackExampleTimestamp, slackExampleBody, "", signedAt},
		"no secret configured":   {"", slackExampleTimestamp, slackExampleBody, slackExampleSignature, signedAt},
		"five minutes and a bit": {slackExampleSecret, slackExampleTimestamp, slackExampleBody, slackExampleSignature, signedAt.Add(5*time.Minute + time.Second)},
		"from the future":        {slackExampleSecret, slackExampleTimestamp, slackExampleBody, slackExampleSignature, signedAt.Add(-5*time.Minute - time.Second)},
		"timestamp not a number": {slackExampleSecret, "1531420618.0", slackExampleBody, slackExampleSignature, signedAt},
		"timestamp missing":      {slackExampleSecret, "", slackExampleBody, slackExampleSignature, signedAt},
	} {
		if err := VerifySlackSignature(c.secret, c.timestamp, []byte(c.body), c.signature, c.now); !errors.Is(err, ErrSlackSignature) {
			t.Errorf("%s: %v, want ErrSlackSignature", name, err)
		}
	}
	// The edge of the window is still inside it.
	if err := VerifySlackSignature(slackExampleSecret, slackExampleTimestamp, []byte(slackExampleBody), slackExampleSignature, signedAt.Add(SlackMaxSkew)); err != nil {
		t.Fatalf("at exactly five minutes: %v", err)
	}
}

func TestMattermostContextTokens(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	c := SignMattermostContext(key, MattermostContext{AlertID: 42, Action: "acknowledge", UserID: 7, Expires: now.Add(time.Hour).Unix()})
	if err := VerifyMattermostContext(key, c, now); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	if err := VerifyMattermostContext(key, c, now.Add(time.Hour)); !errors.Is(err, ErrMattermostToken) {
		t.Fatalf("expired token: %v", err)
	}
	if err := VerifyMattermostContext([]byte("another key, just as long as it"), c, now); !errors.Is(err, ErrMattermostToken) {
		t.Fatalf("token under another key: %v", err)
	}
	if err := VerifyMattermostContext(nil, c, now); !errors.Is(err, ErrMattermostToken) {
		t.Fatalf("no key: %v", err)
	}
}
