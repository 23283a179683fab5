package notifiers

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/egress"
)

// A failed send's error is shown to every user, while the contact
// method's value (a Slack or webhook URL is its own key) is its owner's.
// Whatever fails — no listener, no such host, an error status whose body
// echoes the path — the error says what happened and gives away no part
// of the URL, nor the resolver's address.
func TestSendErrorsKeepTheDestinationOut(t *testing.T) {
	const resolver = "10.53.0.2:53"
	guard := egress.New([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, func(_ context.Context, _, host string) ([]netip.Addr, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: resolver, IsNotFound: true}
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := closed.Listener.Addr().String()
	closed.Close()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cannot POST "+r.URL.Path+" on "+r.Host, http.StatusInternalServerError)
	}))
	t.Cleanup(echo.Close)
	echoHost := echo.Listener.Addr().String()

	ntfy, err := NewNtfy(NtfyConfig{Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	public, private, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	push, err := NewWebPush(WebPushConfig{VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: "mailto:ops@example.com", Guard: guard})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	senders := map[string]Sender{
		"webhook": NewWebhook(guard), "slack": NewSlack(guard), "teams": NewTeams(guard), "ntfy": ntfy, "push": push,
	}
	for name, sender := range senders {
		for _, c := range []struct {
			failure, host, want string
		}{
			{"closed port", closedHost, "connection refused"},
			{"unknown host", "hooks.internal.example", "no such host"},
			{"500 echoing the path", echoHost, "500"},
		} {
			t.Run(name+"/"+c.failure, func(t *testing.T) {
				url := "http://" + c.host + "/services/T0SECRET1/B0SECRET2/xoxSECRETTOKEN"
				if c.host == "hooks.internal.example" {
					url = "https://" + c.host + "/services/T0SECRET1/B0SECRET2/xoxSECRETTOKEN"
				}
				dest := url
				if name == "push" {
					dest = b.subscription(url)
				}
				_, err := sender.Send(context.Background(), testMessage(dest))
				if err == nil {
					t.Fatal("the send succeeded")
				}
				reason := Reason(err, dest)
				leaks := []string{"SECRET", "/services/", c.host, resolver, "10.53.0.2"}
				if c.failure != "500 echoing the path" {
					// The sender's own error is clean already; Reason
					// is only the last line.
					for _, leak := range leaks {
						if strings.Contains(err.Error(), leak) {
							t.Errorf("error %q gives away %q", err, leak)
						}
					}
				}
				for _, leak := range leaks {
					if strings.Contains(reason, leak) {
						t.Errorf("reason %q gives away %q", reason, leak)
					}
				}
				if !strings.Contains(reason, c.want) {
					t.Errorf("reason %q does not say %q", reason, c.want)
				}
			})
		}
	}
}

// A refusal by the outbound guard is permanent, and says why.
func TestRefusedDestinationIsPermanent(t *testing.T) {
	sink := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a refused destination was reached") }))
	t.Cleanup(sink.Close)
	_, err := NewWebhook(nil).Send(context.Background(), testMessage(sink.URL+"/hook"))
	var refused *egress.RefusedError
	if !errors.As(err, &refused) || !IsPermanent(err) || !strings.Contains(err.Error(), "loopback") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("send to loopback: %v", err)
	}
}
