package secrets

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func newKey(t *testing.T) *Key {
	t.Helper()
	text, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKey(text)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := newKey(t)
	r := NewKeyring(k)
	a, err := r.Seal("repos.secret", "hunter2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Seal("repos.secret", "hunter2")
	if a == b {
		t.Error("two seals of one value are equal: the nonce must be random")
	}
	if strings.Contains(a, "hunter2") || !IsSealed(a) || KeyID(a) != k.ID() {
		t.Errorf("sealed %q", a)
	}
	if got, err := r.Open("repos.secret", a); err != nil || got != "hunter2" {
		t.Errorf("Open = %q, %v", got, err)
	}
	if s, err := r.Seal("x", ""); s != "" || err != nil {
		t.Errorf("empty sealed as %q, %v", s, err)
	}
	if s, err := r.Open("x", ""); s != "" || err != nil {
		t.Errorf("empty opened as %q, %v", s, err)
	}
}

// A wrong key, a changed value, a value moved to another column and a
// value never sealed are clear errors of kind Invalid, never garbage.
func TestOpenFailures(t *testing.T) {
	k := newKey(t)
	r := NewKeyring(k)
	sealed, _ := r.Seal("repos.secret", "hunter2")
	other := NewKeyring(newKey(t))
	// The same id with another key: forged from the other key's output.
	sameID := NewKeyring(&Key{id: k.id, aead: newKey(t).aead})
	// A bit of the ciphertext changed, the encoding kept valid.
	raw, err := base64.RawURLEncoding.DecodeString(sealed[strings.LastIndexByte(sealed, ':')+1:])
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)/2] ^= 1
	flip := sealed[:strings.LastIndexByte(sealed, ':')+1] + base64.RawURLEncoding.EncodeToString(raw)
	for name, tc := range map[string]struct {
		r       *Keyring
		purpose string
		value   string
		want    string
	}{
		"missing key": {other, "repos.secret", sealed, "which is not loaded"},
		"wrong key":   {sameID, "repos.secret", sealed, "does not decrypt"},
		"changed":     {r, "repos.secret", string(flip), "does not decrypt"},
		"moved":       {r, "repos.status_token", sealed, "does not decrypt"},
		"plain text":  {r, "repos.secret", "hunter2", "not an encrypted value"},
		"truncated":   {r, "repos.secret", sealed[:len(prefix)+len(k.id)+5], "damaged"},
		"not base64":  {r, "repos.secret", prefix + k.id + ":!!!", "damaged"},
		"no key id":   {r, "repos.secret", prefix + ":abc", "not an encrypted value"},
	} {
		got, err := tc.r.Open(tc.purpose, tc.value)
		if err == nil || !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.want) || got != "" {
			t.Errorf("%s: Open = %q, %v; want an Invalid error saying %q", name, got, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows the plaintext: %v", name, err)
		}
	}
}

// During a rotation the keyring opens values of both keys and seals with
// the new one.
func TestKeyringRotation(t *testing.T) {
	oldK, newK := newKey(t), newKey(t)
	sealedOld, _ := NewKeyring(oldK).Seal("p", "v1")
	r := NewKeyring(newK, oldK)
	if got, err := r.Open("p", sealedOld); err != nil || got != "v1" {
		t.Fatalf("old value: %q, %v", got, err)
	}
	s, _ := r.Seal("p", "v2")
	if KeyID(s) != newK.ID() || r.Current() != newK.ID() {
		t.Errorf("sealed with %s, want the new key %s", KeyID(s), newK.ID())
	}
	if _, err := NewKeyring(oldK).Open("p", s); err == nil {
		t.Error("the old key alone opened a value of the new key")
	}
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{"", "short", strings.Repeat("A", 44), "!!!!"} {
		if _, err := ParseKey(bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("ParseKey(%q) = %v", bad, err)
		}
	}
	text, _ := GenerateKey()
	k1, err1 := ParseKey(text + "\n")
	k2, err2 := ParseKey(strings.TrimRight(text, "="))
	if err1 != nil || err2 != nil || k1.ID() != k2.ID() {
		t.Errorf("padded and unpadded: %v %v", err1, err2)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", KeyFileName)
	k, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first start: %v, created %v", err, created)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", fi.Mode(), err)
	}
	again, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created || again.ID() != k.ID() {
		t.Fatalf("second start: %v, created %v, same key %v", err, created, again != nil && again.ID() == k.ID())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKeyFile(path); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("loose mode: %v", err)
	}
	if _, err := WriteKeyFile(path); err == nil {
		t.Error("WriteKeyFile overwrote a key file")
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, err := LoadKeyFile(bad); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad key file: %v", err)
	}
}

func TestDropSecretHeaders(t *testing.T) {
	h := map[string]string{
		"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "tok", "X-Hub-Signature-256": "sha256=1",
		"X-Hub-Signature": "sha1=1", "X-Gitea-Signature": "s", "X-Gogs-Signature": "s", "authorization": "Bearer x",
		"Cookie": "c", "X-Custom-Webhook-Secret": "s", "X-Github-Event": "push", "Content-Type": "application/json",
		"X-Gitlab-Event-Uuid": "u",
	}
	got := DropSecretHeaders(h)
	want := map[string]bool{"X-Gitlab-Event": true, "X-Github-Event": true, "Content-Type": true, "X-Gitlab-Event-Uuid": true}
	if len(got) != len(want) {
		t.Errorf("kept %v", got)
	}
	for k := range got {
		if !want[k] {
			t.Errorf("kept %s", k)
		}
	}
	clean := map[string]string{"X-Github-Event": "push"}
	if out := DropSecretHeaders(clean); len(out) != 1 {
		t.Errorf("clean headers changed: %v", out)
	}
}

func TestIsSecretHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"X-Hub-Signature-256": true, "x-hub-signature-256": true, "Authorization": true, "cookie": true,
		"X-Custom-Token": true, "X-API-SECRET": true, "x-my-apikey": true, "X-Bitbucket-Signature": true,
		"X-Passwords": true, "Proxy-Authorization": true, "X-Api-\u212aey": true, // Kelvin sign: a k once lower-cased
		"X-GitHub-Event": false, "X-GitHub-Delivery": false, "Content-Type": false, "User-Agent": false,
		"X-Tok-En": false, "": false, "Content-Length": false,
	} {
		if got := IsSecretHeader(name); got != want {
			t.Errorf("IsSecretHeader(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDropSecretHeadersAllocatesNothingWithoutSecrets(t *testing.T) {
	h := map[string]string{"Content-Type": "application/json", "X-Github-Event": "push", "X-Github-Delivery": "d", "User-Agent": "GitHub-Hookshot/1"}
	if n := testing.AllocsPerRun(100, func() { DropSecretHeaders(h) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
