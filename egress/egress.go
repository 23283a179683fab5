// Package egress guards the requests Klaxon makes to URLs its users
// enter (outbound webhooks, Slack, Teams, ntfy, Web Push endpoints), so a
// contact method cannot turn Klaxon into a way into its own network: to
// the loopback interface, the private network, a cloud metadata service.
//
// The check runs on the address actually dialled, after name resolution,
// in the dialer's Control hook: a name that resolves to a public address
// when a contact method is saved and to 127.0.0.1 when it is used (DNS
// rebinding) is still refused. Redirects are not followed, since a public
// receiver could otherwise point the request anywhere.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Guard decides which addresses outbound requests may reach: every public
// unicast address, and the ranges an operator allowed.
type Guard struct {
	allow  []netip.Prefix
	lookup LookupFunc
}

// LookupFunc resolves a host name to its addresses, like
// (*net.Resolver).LookupNetIP; network is "ip", "ip4" or "ip6".
type LookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// New returns a guard that also admits the allow ranges. A nil lookup
// means the system resolver; tests pass their own to play DNS.
func New(allow []netip.Prefix, lookup LookupFunc) *Guard {
	if lookup == nil {
		lookup = net.DefaultResolver.LookupNetIP
	}
	return &Guard{allow: append([]netip.Prefix(nil), allow...), lookup: lookup}
}

// ParseAllow reads a comma-separated list of CIDR ranges ("10.1.0.0/16,
// fd00::/8"); a bare address stands for itself alone.
func ParseAllow(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if addr, err := netip.ParseAddr(item); err == nil {
			out = append(out, netip.PrefixFrom(addr, addr.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("outbound allow list: %q is not a CIDR range like 10.0.0.0/8", item)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// RefusedError is a connection the guard did not allow. Its text names
// the kind of address, never the address or the host: it ends up in the
// delivery log, which every user can read.
type RefusedError struct {
	Addr  netip.Addr
	Class string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused: the destination is a %s address, which outbound requests may not reach unless an operator allows its range", e.Class)
}

// Refused ranges beyond what netip classifies itself.
var (
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	cgnat       = netip.MustParsePrefix("100.64.0.0/10")
	reserved4   = netip.MustParsePrefix("240.0.0.0/4") // and the broadcast address
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// class names why addr may not be reached, or "" when it is public.
func class(addr netip.Addr) string {
	addr = addr.WithZone("")
	if v4, ok := embeddedIPv4(addr); ok {
		addr = v4
	}
	switch {
	case !addr.IsValid():
		return "invalid"
	case addr.IsUnspecified() || thisNetwork.Contains(addr):
		return "unspecified"
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate() && addr.Is4():
		return "private"
	case addr.IsPrivate():
		return "unique-local"
	case cgnat.Contains(addr):
		return "shared (carrier-grade NAT)"
	case addr.IsLinkLocalUnicast():
		return "link-local"
	case addr.IsMulticast() || addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast():
		return "multicast"
	case reserved4.Contains(addr):
		return "reserved"
	}
	return ""
}

// embeddedIPv4 finds an IPv4 address carried inside an IPv6 one that the
// network would deliver to that IPv4 host: IPv4-mapped (::ffff:a.b.c.d),
// NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::).
func embeddedIPv4(addr netip.Addr) (netip.Addr, bool) {
	if !addr.Is6() {
		return netip.Addr{}, false
	}
	if addr.Is4In6() {
		return addr.Unmap(), true
	}
	b := addr.As16()
	switch {
	case nat64.Contains(addr):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(addr):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Check reports whether addr may be reached: nil, or a *RefusedError.
func (g *Guard) Check(addr netip.Addr) error {
	c := class(addr)
	if c == "" {
		return nil
	}
	if g.listed(addr) {
		return nil
	}
	return &RefusedError{Addr: addr, Class: c}
}

// listed reports whether addr, or the IPv4 address it maps, is in the
// allow list.
func (g *Guard) listed(addr netip.Addr) bool {
	plain := addr.WithZone("")
	for _, p := range g.allow {
		if p.Contains(plain) || p.Contains(plain.Unmap()) {
			return true
		}
	}
	return false
}

// control runs on every socket before it connects, with the address
// actually dialled: the last word, whatever resolved the name.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: dial address %q: %w", address, err)
	}
	return g.Check(ap.Addr())
}

// DialContext resolves address with the guard's lookup and connects to
// the first allowed address that answers. Refused addresses are skipped;
// when every address is refused, the error is the *RefusedError.
func (g *Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: %w", err)
	}
	var addrs []netip.Addr
	if addr, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{addr}
	} else {
		ipNet := "ip"
		switch network {
		case "tcp4":
			ipNet = "ip4"
		case "tcp6":
			ipNet = "ip6"
		}
		if addrs, err = g.lookup(ctx, ipNet, host); err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
	}
	dialer := net.Dialer{Control: g.control}
	var refused, failed error
	for _, addr := range addrs {
		if err := g.Check(addr); err != nil {
			refused = err
			continue
		}
		conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
		if err == nil {
			return conn, nil
		}
		failed = err
		if ctx.Err() != nil {
			break
		}
	}
	if failed != nil {
		return nil, failed
	}
	return nil, refused
}

// Client returns an HTTP client that dials through the guard, gives up
// after timeout, follows no redirect (the 3xx answer is returned, and a
// sender counts it as a failure with its status) and ignores proxy
// settings in the environment: a proxy would resolve names where the
// guard cannot see them.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = g.DialContext
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// ErrLocalURL is a URL whose host is plainly one the guard refuses.
var ErrLocalURL = errors.New("egress: URL points at a local address")

// CheckURL refuses, before anything is stored, a URL whose host is an
// address the guard refuses or a name that always means this machine
// ("localhost"). It resolves nothing: it catches the obvious mistakes
// and probes early, with a clear message, while the check when
// connecting is the one that holds.
func (g *Guard) CheckURL(raw string) error {
	addr, ok := urlAddr(raw)
	if !ok {
		return nil
	}
	if err := g.Check(addr); err != nil {
		return fmt.Errorf("%w: %w", ErrLocalURL, err)
	}
	return nil
}

// urlAddr is the address a URL's host plainly stands for: a literal
// address, or 127.0.0.1 for localhost. Other names are not resolved.
func urlAddr(raw string) (netip.Addr, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return netip.Addr{}, false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if addr, err := netip.ParseAddr(host); err == nil {
		return addr, true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return netip.MustParseAddr("127.0.0.1"), true
	}
	return netip.Addr{}, false
}

// Listed reports whether a URL's host is plainly an address in the allow
// list (a receiver on the premises), where plain http may be accepted.
func (g *Guard) Listed(raw string) bool {
	addr, ok := urlAddr(raw)
	return ok && g.listed(addr)
}
