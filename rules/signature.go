package rules

// SignatureHeaderNames are every header a signature is read from; the
// webhook route must pass them on.
var SignatureHeaderNames = []string{"X-Detectify-Signature", "X-Signature", "X-Hub-Signature-256"}

// SignatureHeaders are the headers a sender's HMAC-SHA256 signature of
// the body is read from: Detectify's own, and for every other sender a
// generic one or GitHub's ("sha256=" followed by hex).
func SignatureHeaders(t IntegrationType) []string {
	if t == TypeDetectify {
		return SignatureHeaderNames[:1:1]
	}
	return SignatureHeaderNames[1:]
}
