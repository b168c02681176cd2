package api

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzSecretName: an accepted name is upper case, made of letters,
// digits and _ only, not starting with a digit nor GITHUB_; accepted
// environment names have no control characters or surrounding spaces.
func FuzzSecretName(f *testing.F) {
	for _, s := range []string{"DEPLOY_TOKEN", "deploy_token", "_x", "1BAD", "GITHUB_TOKEN", "github_x", "", "A-B", "Ä", "A B", "production", " prod", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if up, err := checkSecretName(s); err == nil {
			if up != strings.ToUpper(s) || up == "" || strings.HasPrefix(up, "GITHUB_") || (up[0] >= '0' && up[0] <= '9') {
				t.Fatalf("accepted %q as %q", s, up)
			}
			for _, r := range up {
				if !(r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
					t.Fatalf("accepted %q with %q", s, r)
				}
			}
		}
		if checkEnvName(s) == nil && (strings.ContainsFunc(s, unicode.IsControl) || strings.TrimSpace(s) != s || len(s) > 255) {
			t.Fatalf("accepted environment %q", s)
		}
	})
}

func TestSecretNameRules(t *testing.T) {
	for name, ok := range map[string]bool{"DEPLOY_TOKEN": true, "deploy_token": true, "_X9": true, "1BAD": false,
		"GITHUB_TOKEN": false, "github_x": false, "": false, "A-B": false, "A B": false} {
		if _, err := checkSecretName(name); (err == nil) != ok {
			t.Errorf("checkSecretName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
