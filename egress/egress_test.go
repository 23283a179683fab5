package egress_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/egress"
)

// sink is a local HTTP server that counts the requests reaching it.
func sink(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if h != nil {
			h(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// hosts is a resolver for tests: each name has the addresses listed.
func hosts(names map[string][]string) egress.LookupFunc {
	return func(_ context.Context, _, host string) ([]netip.Addr, error) {
		list, ok := names[host]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, a := range list {
			out = append(out, netip.MustParseAddr(a))
		}
		return out, nil
	}
}

func allow(t *testing.T, list string) []netip.Prefix {
	t.Helper()
	p, err := egress.ParseAllow(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wantRefused(t *testing.T, err error, class string) {
	t.Helper()
	var refused *egress.RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("want a refused %s address, got %v", class, err)
	}
	if refused.Class != class {
		t.Fatalf("refused as %s, want %s", refused.Class, class)
	}
}

func TestGuardRefusesEveryNonPublicClass(t *testing.T) {
	g := egress.New(nil, nil)
	for _, c := range []struct{ addr, class string }{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"100.64.0.1", "shared (carrier-grade NAT)"},
		{"100.127.255.254", "shared (carrier-grade NAT)"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::a9fe:a9fe", "link-local"},
		{"2002:c0a8:101::1", "private"},
	} {
		t.Run(c.addr, func(t *testing.T) {
			wantRefused(t, g.Check(netip.MustParseAddr(c.addr)), c.class)
			// And when dialling it, before any packet leaves.
			addr := netip.MustParseAddr(c.addr)
			_, err := g.DialContext(context.Background(), "tcp", netip.AddrPortFrom(addr.WithZone(""), 80).String())
			wantRefused(t, err, c.class)
			if strings.Contains(err.Error(), addr.WithZone("").String()) {
				t.Fatalf("the refusal names the address: %v", err)
			}
		})
	}
	for _, public := range []string{"93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "100.128.0.1", "172.32.0.1"} {
		if err := g.Check(netip.MustParseAddr(public)); err != nil {
			t.Errorf("%s refused: %v", public, err)
		}
	}
}

func TestGuardRefusesALocalSink(t *testing.T) {
	srv, hits := sink(t, nil)
	_, err := egress.New(nil, nil).Client(5*time.Second).Post(srv.URL, "text/plain", strings.NewReader("x"))
	wantRefused(t, err, "loopback")
	if hits.Load() != 0 {
		t.Fatalf("the refused sink got %d requests", hits.Load())
	}
}

// A name is checked by the address it resolves to when the connection is
// made: whatever it resolved to when the URL was saved.
func TestGuardChecksTheResolvedAddress(t *testing.T) {
	srv, hits := sink(t, nil)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	lookup := hosts(map[string][]string{
		"receiver.example":   {"127.0.0.1"},
		"metadata.example":   {"169.254.169.254"},
		"everywhere.example": {"10.0.0.7", "127.0.0.1", "fd00::7"},
	})
	client := egress.New(nil, lookup).Client(5 * time.Second)
	for name, class := range map[string]string{"receiver.example": "loopback", "metadata.example": "link-local", "everywhere.example": "unique-local"} {
		_, err := client.Post("http://"+net.JoinHostPort(name, strconv.Itoa(port))+"/hook", "text/plain", strings.NewReader("x"))
		wantRefused(t, err, class)
	}
	if hits.Load() != 0 {
		t.Fatalf("a name resolving to a refused address got %d requests through", hits.Load())
	}

	// The same name, with loopback allowed, connects: the resolved
	// address is the one dialled.
	allowed := egress.New(allow(t, "127.0.0.1/32"), lookup).Client(5 * time.Second)
	resp, err := allowed.Post("http://"+net.JoinHostPort("everywhere.example", strconv.Itoa(port))+"/hook", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if hits.Load() != 1 {
		t.Fatalf("allowed: %d requests arrived", hits.Load())
	}
	_, err = allowed.Get("http://nowhere.example/")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Fatalf("unknown name: %v", err)
	}
}

// A receiver the guard allows cannot send the request on: the redirect
// comes back as the answer, to an address refused or not.
func TestGuardFollowsNoRedirect(t *testing.T) {
	inner, innerHits := sink(t, nil)
	for name, target := range map[string]string{
		"to a refused address": "http://169.254.169.254/latest/meta-data/",
		"to an allowed one":    inner.URL + "/elsewhere",
	} {
		t.Run(name, func(t *testing.T) {
			outer, _ := sink(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusTemporaryRedirect)
			})
			client := egress.New(allow(t, "127.0.0.1/32,::1/128"), nil).Client(5 * time.Second)
			resp, err := client.Post(outer.URL, "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != target {
				t.Fatalf("answer %d %s", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	if innerHits.Load() != 0 {
		t.Fatalf("the redirect was followed: %d requests", innerHits.Load())
	}
}

func TestAllowListAdmitsItsRanges(t *testing.T) {
	g := egress.New(allow(t, " 10.20.0.0/16, 127.0.0.1 ,fd00::/16,192.168.7.9/24"), nil)
	for addr, ok := range map[string]bool{
		"10.20.3.4": true, "10.21.0.1": false,
		"127.0.0.1": true, "127.0.0.2": false, "::ffff:127.0.0.1": true, "::1": false,
		"fd00::5": true, "fd01::5": false, "fc00::1": false,
		"192.168.7.200": true, "192.168.8.1": false,
		"169.254.169.254": false,
	} {
		if err := g.Check(netip.MustParseAddr(addr)); (err == nil) != ok {
			t.Errorf("%s: allowed %v, want %v (%v)", addr, err == nil, ok, err)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "ten", "10.0.0.0/8,,x", "fe80::/129"} {
		if _, err := egress.ParseAllow(bad); err == nil || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if p, err := egress.ParseAllow(""); err != nil || len(p) != 0 {
		t.Errorf("empty list: %v %v", p, err)
	}
}

func TestCheckURLRefusesPlainlyLocalHosts(t *testing.T) {
	strict := egress.New(nil, nil)
	for _, raw := range []string{
		"https://127.0.0.1/hook", "http://localhost:8080/", "https://LOCALHOST./x", "https://api.localhost/",
		"https://[::1]:8443/", "https://10.0.0.5/hook", "https://169.254.169.254/latest", "https://[::ffff:127.0.0.1]/",
		"https://[fd00::1]/", "https://0.0.0.0/",
	} {
		if err := strict.CheckURL(raw); !errors.Is(err, egress.ErrLocalURL) {
			t.Errorf("%s: %v", raw, err)
		}
	}
	for _, raw := range []string{"https://hooks.slack.com/services/T/B/X", "https://8.8.8.8/", "https://internal.example/"} {
		if err := strict.CheckURL(raw); err != nil {
			t.Errorf("%s refused: %v", raw, err)
		}
	}
	onPrem := egress.New(allow(t, "10.0.0.0/8,127.0.0.1/32"), nil)
	for raw, listed := range map[string]bool{"http://10.1.2.3/hook": true, "http://127.0.0.1:9/": true, "http://localhost/": true, "http://[::1]/": false, "http://example.com/": false} {
		if got := onPrem.Listed(raw); got != listed {
			t.Errorf("Listed(%s) = %v", raw, got)
		}
		if listed {
			if err := onPrem.CheckURL(raw); err != nil {
				t.Errorf("%s refused although allowed: %v", raw, err)
			}
		}
	}
}
