package server

import (
	"net/http"
	"strings"
	"testing"
)

// GitHub sends installation and integration_installation with the same
// body: two events, which de-duplication by body must not merge.
func TestWebhookDedupeKeyHasTheEventType(t *testing.T) {
	h := newHarness(t, harnessOpts{files: map[string]string{"README": "no workflow"}})
	body := []byte(`{"action":"created","installation":{"id":1}}`)
	for _, ev := range []string{"installation", "integration_installation"} {
		if code, b := h.hookRaw(ev, body, "d-"+ev, sign(h.repo.Secret, body)); code != http.StatusAccepted {
			t.Errorf("%s: %d %s, want 202", ev, code, b)
		}
	}
	// The same event and body again (another delivery id) is a duplicate.
	if code, b := h.hookRaw("installation", body, "d-again", sign(h.repo.Secret, body)); code != http.StatusOK || !strings.Contains(b, "duplicate") {
		t.Errorf("installation again: %d %s, want a duplicate", code, b)
	}
}
