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
// It allocates nothing for a name already in canonical form (every stored
// webhook's headers go through it).
func IsSecretHeader(name string) bool {
	if secretHeaders[name] || secretHeaders[textproto.CanonicalMIMEHeaderKey(name)] {
		return true
	}
	lower := name
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 { // Unicode case folding (the Kelvin sign is a k)
			lower = strings.ToLower(name)
			break
		}
	}
	for _, w := range secretWords {
		if containsFold(lower, w) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains word (lower-case ASCII) in any
// ASCII case.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		j := 0
		for j < len(word) && lowerASCII(s[i+j]) == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
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
