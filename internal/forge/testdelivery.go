package forge

import (
	"encoding/json"

	"github.com/conveyor-ci/conveyor/internal/event"
)

// IsTestDelivery reports whether a verified delivery is Gitea's (or
// Forgejo's) "Test delivery" button: a push whose before and after are the
// same commit. A real push always moves its ref, so such a push changes
// nothing; GitHub's button sends a ping instead.
func IsTestDelivery(forgeName, eventName string, body []byte) bool {
	f, err := canonical("forge.IsTestDelivery", forgeName)
	if err != nil || f != event.Gitea || eventName != "push" {
		return false
	}
	var p struct {
		Before string `json:"before"`
		After  string `json:"after"`
	}
	if json.Unmarshal(body, &p) != nil {
		return false
	}
	return p.After != "" && p.Before == p.After
}
