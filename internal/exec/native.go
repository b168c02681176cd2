package exec

import "github.com/conveyor-ci/conveyor/internal/plan"

// NativeAction reports whether Conveyor runs uses itself, without
// fetching it: actions/checkout, the artifact actions and the cache
// actions (any ref). A resolver of remote actions skips these.
func NativeAction(uses string) bool {
	return plan.StepKind(uses) == "checkout" || artifactAction(uses) != "" || cacheAction(uses) != ""
}
