// Package secrets encrypts credentials at rest and says which request
// headers carry secrets.
//
// A sealed value is "enc:v1:KEYID:DATA": DATA is the base64 (URL alphabet,
// no padding) of a random 12-byte nonce followed by the AES-256-GCM
// ciphertext and tag. The purpose (for example "repos.secret") is the
// additional data, so a value copied into another column does not open.
// KEYID names the key that sealed it, so a Keyring holding the new and the
// old keys reads every value during a rotation.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

const prefix = "enc:v1:"

// Key is one AES-256-GCM key and its id.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey makes a Key of KeySize raw bytes.
func NewKey(raw []byte) (*Key, error) {
	const op = "secrets.NewKey"
	if len(raw) != KeySize {
		return nil, errs.E(op, errs.Invalid, "a key is %d bytes, not %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	// The id is a hash of the key: it tells keys apart and reveals nothing
	// usable about them.
	sum := sha256.Sum256(append([]byte("conveyor secret key id\x00"), raw...))
	return &Key{id: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// ParseKey reads a key written as base64 (standard alphabet, padded or
// not) of KeySize bytes, as CONVEYOR_SECRET_KEY and the key file hold it.
func ParseKey(text string) (*Key, error) {
	text = strings.TrimSpace(text)
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(text)
	}
	if err != nil || len(raw) != KeySize {
		return nil, errs.E("secrets.ParseKey", errs.Invalid,
			"a secret key is the base64 of %d random bytes (make one with: head -c %d /dev/urandom | base64)", KeySize, KeySize)
	}
	return NewKey(raw)
}

// GenerateKey returns a new random key as ParseKey reads it.
func GenerateKey() (string, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", errs.Wrap("secrets.GenerateKey", errs.Other, err)
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// ID names the key in the values it seals.
func (k *Key) ID() string { return k.id }

// Keyring seals with its current key and opens values sealed by any of
// its keys. Immutable; safe for concurrent use.
type Keyring struct {
	current *Key
	byID    map[string]*Key
}

// NewKeyring returns a keyring sealing with current and also opening
// values of the old keys (a rotation in progress).
func NewKeyring(current *Key, old ...*Key) *Keyring {
	r := &Keyring{current: current, byID: map[string]*Key{current.id: current}}
	for _, k := range old {
		if k != nil && r.byID[k.id] == nil {
			r.byID[k.id] = k
		}
	}
	return r
}

// Current is the id of the key that seals.
func (r *Keyring) Current() string { return r.current.id }

// Keys are every key of the keyring, the current one first.
func (r *Keyring) Keys() []*Key {
	out := []*Key{r.current}
	for _, id := range r.IDs() {
		if id != r.current.id {
			out = append(out, r.byID[id])
		}
	}
	return out
}

// IDs are the ids of every key that opens, sorted.
func (r *Keyring) IDs() []string {
	ids := make([]string, 0, len(r.byID))
	for id := range r.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Seal encrypts plaintext for purpose. The empty string stays empty, so
// "nothing configured" needs no key to be seen.
func (r *Keyring) Seal(purpose, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	k := r.current
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", errs.Wrap("secrets.Seal", errs.Other, err)
	}
	data := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(data), nil
}

// Open decrypts a value Seal made for purpose. A value sealed with a key
// the keyring lacks, or that does not decrypt (another key with the same
// id, a value changed or moved), is an errs.Invalid error saying so; never
// garbage.
func (r *Keyring) Open(purpose, sealed string) (string, error) {
	const op = "secrets.Open"
	if sealed == "" {
		return "", nil
	}
	id, data, ok := split(sealed)
	if !ok {
		return "", errs.E(op, errs.Invalid, "%s is not an encrypted value", purpose)
	}
	k := r.byID[id]
	if k == nil {
		return "", errs.E(op, errs.Invalid, "%s was encrypted with key %s, which is not loaded (loaded: %s): set the key it was written with",
			purpose, id, strings.Join(r.IDs(), ", "))
	}
	raw, err := base64.RawURLEncoding.DecodeString(data)
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", errs.E(op, errs.Invalid, "%s: the encrypted value is damaged", purpose)
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(purpose))
	if err != nil {
		return "", errs.E(op, errs.Invalid, "%s does not decrypt with key %s: the value was changed or the key is not the one it was written with", purpose, id)
	}
	return string(plain), nil
}

// IsSealed reports whether s has the form Seal gives.
func IsSealed(s string) bool { _, _, ok := split(s); return ok }

// KeyID is the id of the key that sealed s, or "" when s is not sealed.
func KeyID(s string) string { id, _, _ := split(s); return id }

func split(s string) (id, data string, ok bool) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", "", false
	}
	id, data, ok = strings.Cut(rest, ":")
	return id, data, ok && id != "" && data != ""
}
