package forge

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

const opParse = "forge.Parse"

// Parse turns a webhook delivery into an event. The event's Name and Action
// use GitHub's vocabulary whatever the forge; Headers (without secrets such
// as X-Gitlab-Token) and Body are always filled. A pull request's Ref stays
// empty, as the event model says: its refs are in PullRequest. An unknown forge, a missing event header or a body that is not a
// JSON object is errs.Invalid; an event kind Parse has no mapping for is not
// an error (it gets its forge's name and the payload's action).
//
// Parse does not verify the delivery: call Verify first.
func Parse(forgeName string, headers http.Header, body []byte) (*event.Event, error) {
	f, err := canonical(opParse, forgeName)
	if err != nil {
		return nil, err
	}
	m, err := decode(body)
	if err != nil {
		return nil, err
	}
	ev := &event.Event{
		Forge:      f,
		DeliveryID: deliveryID(f, headers),
		Headers:    firstValues(headers),
		Body:       m,
	}
	switch f {
	case event.GitHub:
		err = parseGitHub(ev, headers, obj(m))
	case event.Gitea:
		err = parseGitea(ev, headers, obj(m))
	default:
		err = parseGitLab(ev, headers, obj(m))
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// decode reads body as one JSON object.
func decode(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errs.E(opParse, errs.Invalid, "empty payload")
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errs.E(opParse, errs.Invalid, "payload is not a JSON object: %v", err)
	}
	if m == nil { // the body was JSON null
		return nil, errs.E(opParse, errs.Invalid, "payload is not a JSON object: null")
	}
	return m, nil
}

// secretHeaders are left out of Event.Headers, which filters read and the
// server may store: X-Gitlab-Token is the webhook secret itself.
var secretHeaders = map[string]bool{
	"X-Gitlab-Token": true, "Authorization": true, "Proxy-Authorization": true, "Cookie": true,
}

// firstValues maps each header's canonical name to its first value, leaving
// out secretHeaders.
func firstValues(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		ck := http.CanonicalHeaderKey(k)
		if secretHeaders[ck] {
			continue
		}
		if _, dup := out[ck]; len(v) == 0 || dup && k != ck {
			continue // a canonical key wins over a hand-written variant
		}
		out[ck] = v[0]
	}
	return out
}

// eventHeader returns the first non-empty header of names, and which one it was.
func eventHeader(h http.Header, names ...string) (value, name string) {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v, n
		}
	}
	return "", ""
}

// DeliveryID returns the forge's id of a delivery, or "" when it sent none.
// The intake stores deliveries before parsing them and uses it to drop
// redelivered ones. For GitLab, Idempotency-Key comes first: it stays the
// same across retries of one delivery, which is what deduplication needs.
func DeliveryID(forgeName string, headers http.Header) string {
	f, err := canonical("forge.DeliveryID", forgeName)
	if err != nil {
		return ""
	}
	return deliveryID(f, headers)
}

func deliveryID(f string, h http.Header) string {
	var names []string
	switch f {
	case event.GitHub:
		names = []string{"X-GitHub-Delivery"}
	case event.Gitea:
		names = []string{"X-Gitea-Delivery", "X-Forgejo-Delivery", "X-GitHub-Delivery"}
	default:
		names = []string{"Idempotency-Key", "X-Gitlab-Event-UUID"}
	}
	v, _ := eventHeader(h, names...)
	return v
}
