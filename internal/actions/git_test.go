package actions

import (
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// gitKind reads git's own words, not digits of a path: a missing
// repository under a temporary folder named ...1401... is not a 401.
func TestGitKind(t *testing.T) {
	for msg, want := range map[string]errs.Kind{
		"fatal: '/tmp/Test1404013980/001/acme/missing' does not appear to be a git repository\nfatal: Could not read from remote repository.": errs.NotFound,
		"fatal: unable to access 'https://x/acme/a/': The requested URL returned error: 403":                                                  errs.Unauthorized,
		"fatal: unable to access 'https://x/acme/a/': The requested URL returned error: 401":                                                  errs.Unauthorized,
		"fatal: Authentication failed for 'https://x/acme/a/'":                                                                                errs.Unauthorized,
		"fatal: could not read Username for 'https://github.com': terminal prompts disabled":                                                  errs.Unauthorized,
		"remote: Repository not found.\nfatal: repository 'https://x/acme/a/' not found":                                                      errs.NotFound,
	} {
		if got := gitKind(msg); got != want {
			t.Errorf("gitKind(%q) = %v, want %v", msg, got, want)
		}
	}
}
