package forge

import (
	"net/http"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// Gitea (and Forgejo) send GitHub-shaped payloads; only the event names and
// a few actions differ.

// Gitea's event headers. X-Gitea-Event is the coarse event (pull_request for
// a label change too); X-Gitea-Event-Type the fine one (pull_request_label).
const (
	hdrGiteaEvent       = "X-Gitea-Event"
	hdrForgejoEvent     = "X-Forgejo-Event"
	hdrGiteaEventType   = "X-Gitea-Event-Type"
	hdrForgejoEventType = "X-Forgejo-Event-Type"
)

func parseGitea(ev *event.Event, h http.Header, m obj) error {
	name, hdr := eventHeader(h, hdrGiteaEvent, hdrForgejoEvent, hdrGiteaEventType, hdrForgejoEventType, "X-GitHub-Event")
	if name == "" {
		return errs.E(opParse, errs.Invalid, "missing %s header", hdrGiteaEvent)
	}
	fine := hdr == hdrGiteaEventType || hdr == hdrForgejoEventType
	ev.Name = giteaEventName(name, fine)
	if err := parseHub(ev, m); err != nil {
		return err
	}
	ev.Action = giteaAction(ev.Action)
	return nil
}

// giteaEventName maps a Gitea event to GitHub's name. fine says name came
// from X-Gitea-Event-Type, where pull_request_comment is a comment on the
// conversation (GitHub's issue_comment), not a review comment.
func giteaEventName(name string, fine bool) string {
	switch name {
	case "issue_assign", "issue_label", "issue_milestone":
		return "issues"
	case "pull_request_assign", "pull_request_label", "pull_request_milestone",
		"pull_request_sync", "pull_request_review_request":
		return "pull_request"
	case "pull_request_comment":
		if fine {
			return "issue_comment"
		}
		return "pull_request_review"
	case "pull_request_approved", "pull_request_rejected",
		"pull_request_review_approved", "pull_request_review_rejected", "pull_request_review_comment":
		return "pull_request_review"
	case "wiki":
		return "gollum"
	}
	return name
}

// giteaAction maps Gitea's actions to GitHub's. label_updated becomes
// labeled although Gitea also sends it when some labels are removed.
func giteaAction(a string) string {
	switch a {
	case "synchronized":
		return "synchronize"
	case "label_updated":
		return "labeled"
	case "label_cleared":
		return "unlabeled"
	}
	return a
}
