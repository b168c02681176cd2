package secrets

import (
	"net/textproto"
	"strings"
)

// secretHeaders are request headers that carry a credential or a proof of
// one: forge tokens and signatures (useless once verified, and a token is
// the webhook secret itself), HTTP authentication and cookies.
var secretHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Set-Cookie":          true,
	"X-Gitlab-Token":      true,
	"X-Hub-Signature":     true,
	"X-Hub-Signature-256": true,
	"X-Gitea-Signature":   true,
	"X-Gogs-Signature":    true,
	"X-Forgejo-Signature": true,
	"X-Gitea-Token":       true,
	"X-Api-Key":           true,
}

// secretWords mark header names that most likely hold a credential even if
// not in the list (X-Custom-Token, X-Bitbucket-Signature, X-Api-Secret).
var secretWords = []string{"token", "signature", "secret", "password", "auth", "cookie", "api-key", "apikey"}

// IsSecretHeader reports whether a header of that name carries a secret.
func IsSecretHeader(name string) bool {
	if secretHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
		return true
	}
	l := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(l, w) {
			return true
		}
	}
	return false
}

// DropSecretHeaders returns h without the headers IsSecretHeader names; h
// itself when it has none (no copy on the common path).
func DropSecretHeaders(h map[string]string) map[string]string {
	n := 0
	for k := range h {
		if IsSecretHeader(k) {
			n++
		}
	}
	if n == 0 {
		return h
	}
	out := make(map[string]string, len(h)-n)
	for k, v := range h {
		if !IsSecretHeader(k) {
			out[k] = v
		}
	}
	return out
}
