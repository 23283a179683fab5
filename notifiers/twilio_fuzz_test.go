package notifiers

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// FuzzVerifyTwilioSignature checks the inbound Twilio signature against a
// reference written from Twilio's description: the URL, then each
// parameter's name and value, names in byte order.
func FuzzVerifyTwilioSignature(f *testing.F) {
	f.Add(testToken, "https://klaxon.example/twilio/sms", "From=%2B15005550006&To=%2B15005550001&Body=ack+12&MessageSid=SM123", "", uint16(0))
	f.Add(testToken, "https://klaxon.example/twilio/voice?again=1", "CallSid=CA1&Digits=4&AccountSid="+testSID, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", uint16(7))
	f.Add(testToken, "https://klaxon.example/twilio/status", "MessageSid=SM1&MessageStatus=delivered&ErrorCode=", "   ", uint16(300))
	f.Add("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212", "not base64!", uint16(19))
	f.Add("", "", "", "", uint16(0))
	f.Add("k", "/", "b=2&a=1&a=0&A=3&%FF=%00", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", uint16(65535))

	f.Fuzz(func(t *testing.T, token, fullURL, rawForm, given string, pos uint16) {
		form, err := url.ParseQuery(rawForm)
		if err != nil {
			return
		}
		mac := referenceTwilioMAC(token, fullURL, form)
		sig := base64.StdEncoding.EncodeToString(mac)
		if !VerifyTwilioSignature(token, fullURL, form, sig) {
			t.Fatalf("the signature of the request does not verify")
		}
		if !VerifyTwilioSignature(token, fullURL, form, " "+sig+"\r\n") {
			t.Fatalf("a signature with surrounding space does not verify")
		}
		flip := byte(1) << (pos % 8)
		bad := slices.Clone(mac)
		bad[int(pos)%len(bad)] ^= flip
		if VerifyTwilioSignature(token, fullURL, form, base64.StdEncoding.EncodeToString(bad)) {
			t.Fatalf("a signature with byte %d changed verifies", int(pos)%len(bad))
		}
		if fullURL != "" {
			u := []byte(fullURL)
			u[int(pos)%len(u)] ^= flip
			if VerifyTwilioSignature(token, string(u), form, sig) {
				t.Fatalf("the signature verifies for another URL %q", u)
			}
		}
		if token != "" {
			k := []byte(token)
			k[int(pos)%len(k)] ^= flip
			if VerifyTwilioSignature(string(k), fullURL, form, sig) {
				t.Fatalf("the signature verifies under another auth token")
			}
		}
		// A value changed in place keeps every other byte of the signed
		// text where it was, so the text differs in exactly one byte.
		for _, name := range slices.Sorted(maps.Keys(form)) {
			if vs := form[name]; len(vs) == 1 && vs[0] != "" {
				changed := url.Values{}
				for k, v := range form {
					changed[k] = slices.Clone(v)
				}
				v := []byte(vs[0])
				v[int(pos)%len(v)] ^= flip
				changed[name] = []string{string(v)}
				if VerifyTwilioSignature(token, fullURL, changed, sig) {
					t.Fatalf("the signature verifies with parameter %q changed", name)
				}
				break
			}
		}
		delete(form, "AddedByAnAttacker")
		form.Add("AddedByAnAttacker", "1")
		if VerifyTwilioSignature(token, fullURL, form, sig) {
			t.Fatalf("the signature verifies with a parameter added")
		}
		form.Del("AddedByAnAttacker")
		// Whatever a header holds, it passes only if it is the MAC.
		if VerifyTwilioSignature(token, fullURL, form, given) {
			got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(given))
			if err != nil || !hmac.Equal(got, mac) {
				t.Fatalf("%q verifies but is not the signature %s", given, sig)
			}
		}
	})
}

func referenceTwilioMAC(token, fullURL string, form url.Values) []byte {
	var signed strings.Builder
	signed.WriteString(fullURL)
	for _, name := range slices.Sorted(maps.Keys(form)) {
		values := slices.Clone(form[name])
		slices.Sort(values)
		for _, v := range values {
			signed.WriteString(name + v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(signed.String()))
	return mac.Sum(nil)
}
