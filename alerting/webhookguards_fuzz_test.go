package alerting

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// signatureEncodings are the forms a sender may give its HMAC in.
var signatureEncodings = []func([]byte) string{
	hex.EncodeToString,
	func(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) },
	func(b []byte) string { return "sha256=" + hex.EncodeToString(b) },
	func(b []byte) string { return "SHA256=" + hex.EncodeToString(b) },
	base64.StdEncoding.EncodeToString,
	base64.RawStdEncoding.EncodeToString,
	base64.URLEncoding.EncodeToString,
	base64.RawURLEncoding.EncodeToString,
}

// FuzzWebhookSignature checks the HMAC-SHA256 check of inbound webhooks:
// a signature computed for the body passes in every accepted form and
// header, and nothing else does.
func FuzzWebhookSignature(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "rules", "testdata", "detectify", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata: %v", err)
	}
	for i, file := range files {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("a-shared-secret-of-some-length", body, "", uint8(i), uint16(i*37))
	}
	f.Add("0123456789abcdef", []byte{}, "sha256=", uint8(2), uint16(0))
	f.Add(strings.Repeat("k", 256), []byte(`{"a":1}`), "  not a signature  ", uint8(5), uint16(9))

	f.Fuzz(func(t *testing.T, secret string, body []byte, given string, form uint8, pos uint16) {
		if secret == "" {
			return // no signature is required then
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		sum := mac.Sum(nil)
		encode := signatureEncodings[int(form)%len(signatureEncodings)]
		flip := byte(1) << (pos % 8)
		for _, typ := range []rules.IntegrationType{rules.TypeDetectify, rules.TypeGeneric} {
			integ := &db.Integration{Type: typ, SignatureSecret: secret}
			headers := rules.SignatureHeaders(typ)
			header := headers[int(pos)%len(headers)]
			sig := encode(sum)
			if p := signatureProblem(integ, body, map[string]string{header: sig}); p != "" {
				t.Fatalf("%s: the body's signature %q in %s is refused: %s", typ, sig, header, p)
			}
			if p := signatureProblem(integ, body, map[string]string{header: " " + sig + "\t"}); p != "" {
				t.Fatalf("%s: a signature with surrounding space is refused: %s", typ, p)
			}
			if p := signatureProblem(integ, body, nil); !strings.HasPrefix(p, "refused: no signature") {
				t.Fatalf("%s: no signature gives %q", typ, p)
			}
			if p := signatureProblem(integ, body, map[string]string{"X-Other-Signature": sig}); !strings.HasPrefix(p, "refused: no signature") {
				t.Fatalf("%s: a signature in another header gives %q", typ, p)
			}
			const mismatch = "refused: the signature does not match the body"
			if len(body) > 0 {
				changed := slices.Clone(body)
				changed[int(pos)%len(changed)] ^= flip
				if p := signatureProblem(integ, changed, map[string]string{header: sig}); p != mismatch {
					t.Fatalf("%s: byte %d of the body changed gives %q", typ, int(pos)%len(body), p)
				}
			}
			if p := signatureProblem(integ, append(slices.Clone(body), ' '), map[string]string{header: sig}); p != mismatch {
				t.Fatalf("%s: a byte added to the body gives %q", typ, p)
			}
			bad := slices.Clone(sum)
			bad[int(pos)%len(bad)] ^= flip
			if p := signatureProblem(integ, body, map[string]string{header: encode(bad)}); p != mismatch {
				t.Fatalf("%s: a signature with one byte changed gives %q", typ, p)
			}
			if p := signatureProblem(integ, body, map[string]string{header: encode(sum[:len(sum)-1])}); p != mismatch {
				t.Fatalf("%s: a truncated signature gives %q", typ, p)
			}
			// Whatever a header holds, it passes only if it decodes to the MAC.
			p := signatureProblem(integ, body, map[string]string{header: given})
			if p == "" && !decodesTo(given, sum) {
				t.Fatalf("%s: %q passes but is not the body's signature", typ, given)
			}
			if p != "" && p != mismatch && !strings.HasPrefix(p, "refused: no signature") {
				t.Fatalf("%s: unknown refusal %q", typ, p)
			}
		}
	})
}

func decodesTo(given string, sum []byte) bool {
	given = strings.TrimSpace(given)
	if len(given) > 7 && strings.EqualFold(given[:7], "sha256=") {
		given = given[7:]
	}
	for _, decode := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if got, err := decode(given); err == nil && hmac.Equal(got, sum) {
			return true
		}
	}
	return false
}
