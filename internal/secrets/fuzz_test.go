package secrets

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// FuzzOpen: whatever is in a credential column, Open gives the plaintext
// of a value sealed with its key or an Invalid error, never a panic or
// garbage; and what Seal makes, Open gives back.
func FuzzOpen(f *testing.F) {
	k, err := NewKey([]byte(strings.Repeat("k", KeySize)))
	if err != nil {
		f.Fatal(err)
	}
	r := NewKeyring(k)
	sealed, _ := r.Seal("repos.secret", "hunter2")
	for _, s := range []string{sealed, "", "enc:v1:", "enc:v1:" + k.ID() + ":", "enc:v1:x:y", "plain", sealed + "A", sealed[:len(sealed)-4]} {
		f.Add(s, "hunter2")
	}
	f.Fuzz(func(t *testing.T, stored, plain string) {
		got, err := r.Open("repos.secret", stored)
		switch {
		case err != nil && (got != "" || !errs.Is(err, errs.Invalid)):
			t.Fatalf("Open(%q) = %q, %v", stored, got, err)
		case err == nil && stored != "" && KeyID(stored) != k.ID():
			t.Fatalf("Open(%q) accepted a value of another key", stored)
		}
		s, err := r.Seal("p", plain)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := r.Open("p", s); err != nil || back != plain {
			t.Fatalf("round trip of %q: %q, %v", plain, back, err)
		}
	})
}

// FuzzParseKey: any text is a key of KeySize bytes or an Invalid error.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"", "AAAA", strings.Repeat("A", 43) + "=", strings.Repeat("A", 43), strings.Repeat("/", 44), " \n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		k, err := ParseKey(text)
		if (err == nil) == (k == nil) || err != nil && !errs.Is(err, errs.Invalid) {
			t.Fatalf("ParseKey(%q) = %v, %v", text, k, err)
		}
	})
}
