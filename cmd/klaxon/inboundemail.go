package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/mailin"
)

// inboundEmailSettings configure the SMTP listener for EMAIL integrations.
type inboundEmailSettings struct {
	// Listen is the SMTP listener's address; empty: no listener.
	Listen string
	// Domain is the domain of EMAIL integrations' addresses.
	Domain   string
	MaxBytes int64
}

func (m *inboundEmailSettings) bind(s *settings) {
	s.string(&m.Listen, "smtp-listen", "KLAXON_SMTP_LISTEN", "", "address of the SMTP listener for EMAIL integrations, e.g. :2525; empty: no listener")
	s.string(&m.Domain, "inbound-email-domain", "KLAXON_INBOUND_EMAIL_DOMAIN", "", "domain of EMAIL integrations' addresses (<routing key>@<domain>); its MX points at the SMTP listener")
	s.int64(&m.MaxBytes, "inbound-email-max-bytes", "KLAXON_INBOUND_EMAIL_MAX_BYTES", mailin.DefaultMaxBytes, "largest mail accepted, attachments included; larger mail gets 552")
}

func (m *inboundEmailSettings) validate() error {
	m.Domain = strings.ToLower(strings.TrimSpace(m.Domain))
	if m.MaxBytes <= 0 {
		return errors.New("inbound email max bytes must be positive")
	}
	if m.Listen != "" && m.Domain == "" {
		return errors.New("the SMTP listener needs KLAXON_INBOUND_EMAIL_DOMAIN: mail is taken only for addresses at it")
	}
	if strings.ContainsAny(m.Domain, "@ \t") {
		return fmt.Errorf("inbound email domain %q must be a bare domain name", m.Domain)
	}
	return nil
}

// startInboundEmail starts the SMTP listener when one is configured; stop
// then stops it within ctx. Without one, both are no-ops.
func startInboundEmail(m inboundEmailSettings, svc *alerting.Service, log *slog.Logger) (stop func(ctx context.Context), err error) {
	if m.Listen == "" {
		return func(context.Context) {}, nil
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for SMTP on %s: %w", m.Listen, err)
	}
	l := mailin.New(mailin.Config{Domain: m.Domain, MaxBytes: m.MaxBytes}, svc, log)
	served := make(chan error, 1)
	go func() { served <- l.Serve(ln) }()
	log.Info("klaxon taking mail", "addr", ln.Addr().String(), "domain", m.Domain)
	return func(ctx context.Context) {
		if err := l.Shutdown(ctx); err != nil {
			log.Warn("SMTP sessions still open at the shutdown timeout; closed", "err", err)
		}
		if err := <-served; err != nil {
			log.Error("SMTP listener stopped", "err", err)
		}
	}, nil
}
