package cache

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Scope is what a job may read and write: its repository and ref, and
// the default branch's ref it may read from.
type Scope struct {
	Repo       string
	Ref        string
	DefaultRef string
}

// TenantRepo is the Scope.Repo of a server's repository: its
// organisation's ID with its name, so that repositories of the same name in
// two organisations never share caches (nor their size limit). orgID 0
// (conveyor run) gives the name alone.
func TenantRepo(orgID int64, name string) string {
	if orgID == 0 {
		return name
	}
	return "org-" + strconv.FormatInt(orgID, 10) + "/" + name
}

// Tokens hands out job-scoped ACTIONS_RUNTIME_TOKENs. Tokens are random
// (256 bits); only their sha256 is kept, and a presented token is checked
// against it in constant time.
type Tokens struct {
	mu     sync.Mutex
	scopes map[[32]byte]issued
	now    func() time.Time
}

type issued struct {
	scope   Scope
	expires time.Time // zero: until revoked
}

// NewTokens makes an empty registry.
func NewTokens() *Tokens { return &Tokens{scopes: map[[32]byte]issued{}, now: time.Now} }

// Issue makes a token for scope; revoke ends it (call it when the job ends).
func (t *Tokens) Issue(scope Scope) (token string, revoke func()) {
	return t.IssueUntil(scope, time.Time{})
}

// IssueUntil makes a token for scope that also ends at expires (for jobs
// run elsewhere, whose end this process may not see).
func (t *Tokens) IssueUntil(scope Scope, expires time.Time) (token string, revoke func()) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	token = hex.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	t.mu.Lock()
	t.scopes[h] = issued{scope, expires}
	t.mu.Unlock()
	return token, func() {
		t.mu.Lock()
		delete(t.scopes, h)
		t.mu.Unlock()
	}
}

// Check returns the scope of token.
func (t *Tokens) Check(token string) (Scope, bool) {
	h := sha256.Sum256([]byte(token))
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var found Scope
	ok := false
	for k, s := range t.scopes { // every key compared in constant time: no early exit on a prefix
		if !s.expires.IsZero() && now.After(s.expires) {
			delete(t.scopes, k)
			continue
		}
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			found, ok = s.scope, true
		}
	}
	return found, ok
}
