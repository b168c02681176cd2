package lint

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// Permission policies: what the GITHUB_TOKEN may do when no permissions:
// says otherwise, as an organisation or repository setting chooses.
const (
	// PolicyWrite gives every scope write (models read), GitHub's
	// permissive default.
	PolicyWrite = "write"
	// PolicyLimitedRead gives contents and packages read, nothing else,
	// GitHub's restricted default.
	PolicyLimitedRead = "limited-read"
)

// scopeOrder is the order GitHub lists scopes in its messages.
var scopeOrder = []string{"actions", "attestations", "checks", "contents", "deployments", "discussions", "issues", "packages", "pages", "pull-requests", "repository-projects", "statuses", "security-events", "id-token", "models"}

var levels = map[string]int{"none": 0, "read": 1, "write": 2}

// grant is a level per scope; a missing scope is none.
type grant map[string]int

// grantOf turns permissions: into levels per scope. read-all and
// write-all give every scope that level (models at most read); a mapping
// gives the scopes it names and none to the others.
func grantOf(p *workflow.Permissions) grant {
	g := grant{}
	switch p.All {
	case "read-all", "write-all":
		lvl := levels[strings.TrimSuffix(p.All, "-all")]
		for _, s := range scopeOrder {
			g[s] = lvl
		}
		g["models"] = min(lvl, levels["read"])
		return g
	}
	for s, v := range p.Scopes {
		g[s] = levels[v]
	}
	return g
}

// policyGrant is what a policy allows when no permissions: is written.
func policyGrant(policy string) grant {
	if policy == PolicyLimitedRead {
		return grant{"contents": levels["read"], "packages": levels["read"]}
	}
	return grantOf(&workflow.Permissions{All: "write-all"})
}

func levelName(l int) string {
	for k, v := range levels {
		if v == l {
			return k
		}
	}
	return "none"
}

// exceeds lists, as GitHub words them, the scopes where want asks more
// than max allows: "actions: write" and "actions: read".
func exceeds(want, max grant) (asked, allowed []string) {
	for _, s := range scopeOrder {
		if want[s] > max[s] {
			asked = append(asked, s+": "+levelName(want[s]))
			allowed = append(allowed, s+": "+levelName(max[s]))
		}
	}
	return asked, allowed
}
