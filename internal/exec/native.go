package exec

import "github.com/conveyor-ci/conveyor/internal/plan"

// NativeAction reports whether Conveyor runs uses itself, without
// fetching it: actions/checkout, the artifact actions and the cache
// actions (any ref). These take precedence over fetching, whatever their
// version; add new native actions here (and to stepRun.execute).
func NativeAction(uses string) bool {
	return plan.StepKind(uses) == "checkout" || artifactAction(uses) != "" || cacheAction(uses) != ""
}
