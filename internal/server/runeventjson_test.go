package server

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/forge"
	"github.com/conveyor-ci/conveyor/internal/store"
)

// A GitHub webhook's run event keeps the payload as delivered: readers
// decode the same event and payload as from the re-encoded form it
// replaces (whitespace, key order and escaping aside), and numbers too
// large for a float64 are no longer rounded.
func TestRunEventJSONKeepsTheDeliveredPayload(t *testing.T) {
	body := []byte(`{
  "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
  "after": "1111111111111111111111111111111111111111", "created": true, "deleted": false,
  "repository": {"full_name": "octo/repo", "default_branch": "main", "id": 9007199254740993},
  "sender": {"login": "octo"}, "note": "<a&b> \u2028",
  "head_commit": {"id": "1111111111111111111111111111111111111111", "message": "x"},
  "commits": [{"id": "1111111111111111111111111111111111111111", "added": ["a.go"], "modified": [], "removed": []}]
}`)
	h := map[string]string{"X-Github-Event": "push", "X-Github-Delivery": "d1"}
	sev := &store.Event{Source: "webhook", Forge: "github", Headers: h, Body: body}
	ev, err := decode(sev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := runEventJSON(sev, ev)
	if err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(runEvent{Event: ev, Payload: forge.GitHubPayload(ev)})
	if err != nil {
		t.Fatal(err)
	}
	var a, b runEvent
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("%v: %s", err, got)
	}
	if err := json.Unmarshal(old, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("run event\n%s\nreads differently from\n%s", got, old)
	}
	var raw struct {
		Payload struct {
			Repository struct {
				ID json.Number `json:"id"`
			} `json:"repository"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(got, &raw); err != nil || raw.Payload.Repository.ID != "9007199254740993" {
		t.Errorf("repository id %q (%v), want it as delivered", raw.Payload.Repository.ID, err)
	}

	// Not UTF-8: encoded from the decoded form, as before.
	sev.Body = append(body[:len(body)-1:len(body)-1], []byte(", \"bad\": \"\xff\"}")...)
	if ev, err = decode(sev); err != nil {
		t.Fatal(err)
	}
	if got, err = runEventJSON(sev, ev); err != nil || !json.Valid(got) {
		t.Fatalf("%v: %s", err, got)
	}
}
