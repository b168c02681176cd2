package forge

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/event"
)

// Forgejo is accepted as a forge name and handled as Gitea.
const Forgejo = "forgejo"

// canonical maps a forge name to one of event.GitHub, event.GitLab,
// event.Gitea; forgejo is Gitea.
func canonical(op, forgeName string) (string, error) {
	switch f := strings.ToLower(strings.TrimSpace(forgeName)); f {
	case event.GitHub, event.GitLab, event.Gitea:
		return f, nil
	case Forgejo:
		return event.Gitea, nil
	}
	return "", errs.E(op, errs.Invalid, "unknown forge %q (want github, gitlab, gitea or forgejo)", forgeName)
}

// isZero reports whether sha is the all-zero id (any length, as SHA-256
// repositories send 64 zeros).
func isZero(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}
