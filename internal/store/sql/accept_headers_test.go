package sqlstore

import (
	"testing"

	"github.com/conveyor-ci/conveyor/internal/secrets"
)

// encodeHeaders writes what encode(secrets.DropSecretHeaders(h)) wrote
// before it, byte for byte.
func TestEncodeHeaders(t *testing.T) {
	for _, h := range []map[string]string{
		nil, {},
		{"X-Github-Event": "push", "X-Hub-Signature-256": "sha256=00", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/1"},
		{"X-Gitlab-Token": "t"},
		{"A": `quote " and \ back`, "B": "<html> & more", "C": "tab\there", "D": "é ünïcode", "E": "\xff bad utf-8", "F": ""},
	} {
		want := encode(secrets.DropSecretHeaders(h))
		if got := encodeHeaders(h); got != want {
			t.Errorf("encodeHeaders(%v) = %s, want %s", h, got, want)
		}
	}
}

func FuzzEncodeHeaders(f *testing.F) {
	f.Add("X-Github-Event", "push", "X-Hub-Signature", "sha1=0")
	f.Add("A", "\"\\<>&\x00\u2028", "b", "\xff")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		h := map[string]string{k1: v1, k2: v2}
		if want, got := encode(secrets.DropSecretHeaders(h)), encodeHeaders(h); got != want {
			t.Errorf("encodeHeaders(%q) = %s, want %s", h, got, want)
		}
	})
}

func BenchmarkStoredHeaders(b *testing.B) {
	h := map[string]string{"Accept": "*/*", "Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/044aadd",
		"X-Github-Event": "push", "X-Github-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "X-Github-Hook-Id": "292430182",
		"X-Github-Hook-Installation-Target-Id": "79929171", "X-Github-Hook-Installation-Target-Type": "repository",
		"X-Hub-Signature":     "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
		"X-Hub-Signature-256": "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c", "Content-Length": "4066"}
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encode(secrets.DropSecretHeaders(h))
		}
	})
	b.Run("encodeHeaders", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeHeaders(h)
		}
	})
}
