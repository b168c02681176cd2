package forge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// GitHub's documented test vector.
const (
	vecSecret = "It's a Secret to Everybody"
	vecBody   = "Hello, World!"
	vecSig    = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	// HMAC-SHA1 of vecBody with vecSecret, from: printf 'Hello, World!' | openssl dgst -sha1 -hmac "It's a Secret to Everybody"
	vecSig1 = "01dc10d0c83e72ed246219cdd91669667fe2ca59"
)

func TestVerify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		forge   string
		secret  string
		h       http.Header
		body    string
		opts    VerifyOptions
		kind    errs.Kind // Other: no error
		message string
	}{
		{"github vector", "github", vecSecret, hdr("X-Hub-Signature-256", "sha256="+vecSig), vecBody, VerifyOptions{}, errs.Other, ""},
		{"github other body", "github", vecSecret, hdr("X-Hub-Signature-256", "sha256="+vecSig), vecBody + " ", VerifyOptions{}, errs.Unauthorized, "signature does not match"},
		{"github other secret", "github", "nope", hdr("X-Hub-Signature-256", "sha256="+vecSig), vecBody, VerifyOptions{}, errs.Unauthorized, "signature does not match"},
		{"github missing", "github", vecSecret, hdr(), vecBody, VerifyOptions{}, errs.Unauthorized, "missing X-Hub-Signature-256 header"},
		{"github no prefix", "github", vecSecret, hdr("X-Hub-Signature-256", vecSig), vecBody, VerifyOptions{}, errs.Unauthorized, "malformed"},
		{"github not hex", "github", vecSecret, hdr("X-Hub-Signature-256", "sha256=zz"), vecBody, VerifyOptions{}, errs.Unauthorized, "not hex"},
		{"github truncated", "github", vecSecret, hdr("X-Hub-Signature-256", "sha256="+vecSig[:40]), vecBody, VerifyOptions{}, errs.Unauthorized, "want 64 hex digits, not 40"},
		{"github sha1 refused", "github", vecSecret, hdr("X-Hub-Signature", "sha1="+vecSig1), vecBody, VerifyOptions{}, errs.Unauthorized, "is not accepted"},
		{"github sha1 allowed", "github", vecSecret, hdr("X-Hub-Signature", "sha1="+vecSig1), vecBody, VerifyOptions{AllowSHA1: true}, errs.Other, ""},
		{"github sha256 wins over sha1", "github", vecSecret, hdr("X-Hub-Signature", "sha1="+vecSig1, "X-Hub-Signature-256", "sha256="+vecSig[:62]+"00"), vecBody, VerifyOptions{AllowSHA1: true}, errs.Unauthorized, "does not match"},
		{"empty secret", "github", "", hdr("X-Hub-Signature-256", "sha256="+vecSig), vecBody, VerifyOptions{}, errs.Invalid, "empty webhook secret"},
		{"unknown forge", "svn", vecSecret, hdr(), vecBody, VerifyOptions{}, errs.Invalid, "unknown forge"},
		{"gitea", "gitea", vecSecret, hdr("X-Gitea-Signature", vecSig), vecBody, VerifyOptions{}, errs.Other, ""},
		{"gitea uppercase hex", "gitea", vecSecret, hdr("X-Gitea-Signature", strings.ToUpper(vecSig)), vecBody, VerifyOptions{}, errs.Other, ""},
		{"gitea hub header", "gitea", vecSecret, hdr("X-Hub-Signature-256", "sha256="+vecSig), vecBody, VerifyOptions{}, errs.Other, ""},
		{"forgejo", "forgejo", vecSecret, hdr("X-Forgejo-Signature", vecSig), vecBody, VerifyOptions{}, errs.Other, ""},
		{"gitea bad", "gitea", vecSecret, hdr("X-Gitea-Signature", vecSig), "Hello", VerifyOptions{}, errs.Unauthorized, "signature does not match"},
		{"gitea missing", "gitea", vecSecret, hdr(), vecBody, VerifyOptions{}, errs.Unauthorized, "missing X-Gitea-Signature header"},
		{"gitlab", "gitlab", vecSecret, hdr("X-Gitlab-Token", vecSecret), vecBody, VerifyOptions{}, errs.Other, ""},
		{"gitlab wrong", "gitlab", vecSecret, hdr("X-Gitlab-Token", vecSecret+"x"), vecBody, VerifyOptions{}, errs.Unauthorized, "does not match"},
		{"gitlab missing", "gitlab", vecSecret, hdr(), vecBody, VerifyOptions{}, errs.Unauthorized, "missing X-Gitlab-Token header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.forge, []byte(tc.secret), tc.h, []byte(tc.body), tc.opts)
			if tc.kind == errs.Other {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errs.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("Verify = %v, want kind %v with %q", err, tc.kind, tc.message)
			}
		})
	}
}
