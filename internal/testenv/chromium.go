package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// EnvChromium names the Chromium (or Chrome) binary the browser tests
// drive; scripts/test.sh installs Debian's chromium and sets it.
const EnvChromium = "CONVEYOR_TEST_CHROMIUM"

// Chromium returns the browser for the UI's end-to-end tests: $CONVEYOR_TEST_CHROMIUM,
// else chromium or google-chrome on PATH. Missing: skipped outside CI.
func Chromium(t testing.TB) string { return chromium(t) }

func chromium(t tb) string {
	t.Helper()
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := os.Stat(p); err != nil {
			missing(t, EnvChromium+"="+p+": "+err.Error())
			return ""
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "no Chromium (set "+EnvChromium+" or apt-get install chromium); skipping the browser tests")
	return ""
}
