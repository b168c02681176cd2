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
	v, err := NewVerifier(forgeName, secret, headers, opts)
	if err != nil {
		return err
	}
	_, _ = v.Write(body)
	return v.Check()
}

// A Verifier checks a delivery while its body streams in: NewVerifier
// checks the headers before any byte of the body is read (GitLab's token
// entirely, the HMAC forges' header presence and format), Write feeds the
// raw body bytes to the HMAC and Check compares at the end. A request that
// cannot be genuine is so refused before its body costs anything.
type Verifier struct {
	mac    hash.Hash // nil: nothing to check over the body (GitLab)
	want   []byte
	header string
}

// NewVerifier checks headers as Verify does and returns the Verifier to
// feed the body to; errors are Verify's.
func NewVerifier(forgeName string, secret []byte, headers http.Header, opts VerifyOptions) (*Verifier, error) {
	const op = "forge.Verify"
	f, err := canonical(op, forgeName)
	if err != nil {
		return nil, err
	}
	if len(secret) == 0 {
		return nil, errs.E(op, errs.Invalid, "empty webhook secret")
	}
	switch f {
	case event.GitHub:
		return verifyGitHub(op, secret, headers, opts)
	case event.Gitea:
		return verifyGitea(op, secret, headers)
	default:
		return &Verifier{}, verifyGitLab(op, secret, headers)
	}
}

// Write feeds body bytes to the signature check; it never fails.
func (v *Verifier) Write(p []byte) (int, error) {
	if v.mac != nil {
		v.mac.Write(p)
	}
	return len(p), nil
}

// Check reports whether the bytes written carry the delivery's signature.
func (v *Verifier) Check() error {
	if v.mac != nil && !hmac.Equal(v.want, v.mac.Sum(nil)) {
		return errs.E("forge.Verify", errs.Unauthorized, "signature does not match (%s)", v.header)
	}
	return nil
}

func verifyGitHub(op string, secret []byte, h http.Header, opts VerifyOptions) (*Verifier, error) {
	if sig := h.Get(hdrHubSig256); sig != "" {
		return newHMAC(op, hdrHubSig256, sig, "sha256=", sha256.New, secret)
	}
	sig1 := h.Get(hdrHubSig1)
	if sig1 != "" && opts.AllowSHA1 {
		return newHMAC(op, hdrHubSig1, sig1, "sha1=", sha1.New, secret)
	}
	if sig1 != "" {
		return nil, errs.E(op, errs.Unauthorized, "missing %s header (%s, HMAC-SHA1, is not accepted)", hdrHubSig256, hdrHubSig1)
	}
	return nil, errs.E(op, errs.Unauthorized, "missing %s header", hdrHubSig256)
}

// verifyGitea checks the first signature header present: Gitea sends
// X-Gitea-Signature and X-Hub-Signature-256, Forgejo also X-Forgejo-Signature,
// all over the same HMAC-SHA256.
func verifyGitea(op string, secret []byte, h http.Header) (*Verifier, error) {
	for _, name := range []string{hdrGiteaSig, hdrForgejoSig} {
		if sig := h.Get(name); sig != "" {
			return newHMAC(op, name, sig, "", sha256.New, secret)
		}
	}
	if sig := h.Get(hdrHubSig256); sig != "" {
		return newHMAC(op, hdrHubSig256, sig, "sha256=", sha256.New, secret)
	}
	return nil, errs.E(op, errs.Unauthorized, "missing %s header", hdrGiteaSig)
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

// newHMAC parses header value sig (after prefix) as the hex HMAC the body
// must have. A value of the wrong length cannot match: it is refused now.
func newHMAC(op, header, sig, prefix string, h func() hash.Hash, secret []byte) (*Verifier, error) {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(sig), prefix)
	if !ok {
		return nil, errs.E(op, errs.Unauthorized, "malformed %s header: want %q followed by hex", header, prefix)
	}
	want, err := hex.DecodeString(hexSig)
	if err != nil {
		return nil, errs.E(op, errs.Unauthorized, "malformed %s header: not hex", header)
	}
	mac := hmac.New(h, secret)
	if len(want) != mac.Size() {
		return nil, errs.E(op, errs.Unauthorized, "malformed %s header: want %d hex digits, not %d", header, 2*mac.Size(), len(hexSig))
	}
	return &Verifier{mac: mac, want: want, header: header}, nil
}
