package localrepo

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// FuzzReadDotenv: any file given to --secret-file or --var-file is read
// without a panic, and a failure is an invalid-input error.
func FuzzReadDotenv(f *testing.F) {
	for _, s := range []string{"A=1\n# c\nexport B='two'\n", "C=\"multi\nline\\n\"\n", "D=\"", "=x", "E=\"\\\"\"", "F= v # note"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ReadDotenv(strings.NewReader(s))
		if err != nil {
			if errs.KindOf(err) != errs.Invalid {
				t.Errorf("error of kind %v: %v", errs.KindOf(err), err)
			}
			return
		}
		for k := range m {
			if k == "" || strings.ContainsAny(k, "=\n") {
				t.Errorf("bad name %q from %q", k, s)
			}
		}
	})
}
