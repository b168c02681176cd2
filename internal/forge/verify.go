package forge

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"net/http"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// VerifyOptions relax verification for old setups.
type VerifyOptions struct {
	// AllowSHA1 accepts GitHub's legacy X-Hub-Signature (HMAC-SHA1) when
	// X-Hub-Signature-256 is absent.
	AllowSHA1 bool
}

// Signature headers.
const (
	hdrHubSig256   = "X-Hub-Signature-256"
	hdrHubSig1     = "X-Hub-Signature"
	hdrGiteaSig    = "X-Gitea-Signature"
	hdrForgejoSig  = "X-Forgejo-Signature"
	hdrGitLabToken = "X-Gitlab-Token"
)

// Verify checks that a webhook delivery was sent by someone who knows
// secret. It reads the raw body bytes, exactly as received: re-encoded JSON
// would not match. Comparisons are constant time. A missing header or a bad
// signature is errs.Unauthorized; an empty secret or unknown forge is
// errs.Invalid (a hook without a secret must not be accepted by mistake).
func Verify(forgeName string, secret []byte, headers http.Header, body []byte, opts VerifyOptions) error {
	const op = "forge.Verify"
	f, err := canonical(op, forgeName)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return errs.E(op, errs.Invalid, "empty webhook secret")
	}
	switch f {
	case event.GitHub:
		return verifyGitHub(op, secret, headers, body, opts)
	case event.Gitea:
		return verifyGitea(op, secret, headers, body)
	default:
		return verifyGitLab(op, secret, headers)
	}
}

func verifyGitHub(op string, secret []byte, h http.Header, body []byte, opts VerifyOptions) error {
	if sig := h.Get(hdrHubSig256); sig != "" {
		return checkHMAC(op, hdrHubSig256, sig, "sha256=", sha256.New, secret, body)
	}
	sig1 := h.Get(hdrHubSig1)
	if sig1 != "" && opts.AllowSHA1 {
		return checkHMAC(op, hdrHubSig1, sig1, "sha1=", sha1.New, secret, body)
	}
	if sig1 != "" {
		return errs.E(op, errs.Unauthorized, "missing %s header (%s, HMAC-SHA1, is not accepted)", hdrHubSig256, hdrHubSig1)
	}
	return errs.E(op, errs.Unauthorized, "missing %s header", hdrHubSig256)
}

// verifyGitea checks the first signature header present: Gitea sends
// X-Gitea-Signature and X-Hub-Signature-256, Forgejo also X-Forgejo-Signature,
// all over the same HMAC-SHA256.
func verifyGitea(op string, secret []byte, h http.Header, body []byte) error {
	for _, name := range []string{hdrGiteaSig, hdrForgejoSig} {
		if sig := h.Get(name); sig != "" {
			return checkHMAC(op, name, sig, "", sha256.New, secret, body)
		}
	}
	if sig := h.Get(hdrHubSig256); sig != "" {
		return checkHMAC(op, hdrHubSig256, sig, "sha256=", sha256.New, secret, body)
	}
	return errs.E(op, errs.Unauthorized, "missing %s header", hdrGiteaSig)
}

// verifyGitLab compares the shared token. Both sides are hashed first so the
// comparison is constant time whatever their lengths.
func verifyGitLab(op string, secret []byte, h http.Header) error {
	tok := h.Values(hdrGitLabToken)
	if len(tok) == 0 || tok[0] == "" {
		return errs.E(op, errs.Unauthorized, "missing %s header", hdrGitLabToken)
	}
	got, want := sha256.Sum256([]byte(tok[0])), sha256.Sum256(secret)
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errs.E(op, errs.Unauthorized, "%s does not match", hdrGitLabToken)
	}
	return nil
}

// checkHMAC checks that header value sig (after prefix) is the hex HMAC of body.
func checkHMAC(op, header, sig, prefix string, h func() hash.Hash, secret, body []byte) error {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), prefix)
	if !ok {
		return errs.E(op, errs.Unauthorized, "malformed %s header: want %q followed by hex", header, prefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return errs.E(op, errs.Unauthorized, "malformed %s header: not hex", header)
	}
	mac := hmac.New(h, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return errs.E(op, errs.Unauthorized, "signature does not match (%s)", header)
	}
	return nil
}
