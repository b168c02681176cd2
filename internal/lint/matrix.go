package lint

import (
	"errors"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/plan"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

func isExprOnly(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}")
}

func pos(n *yaml.Node) workflow.Pos { return workflow.Pos{Line: n.Line, Col: n.Column} }

// matrices checks each job's strategy.matrix as GitHub does before expanding it.
func (l *linter) matrices() {
	for _, j := range l.w.Jobs {
		if j.Strategy == nil || j.Strategy.Matrix == nil {
			continue
		}
		m := j.Strategy.Matrix
		if m.Kind != yaml.MappingNode {
			continue // a whole-matrix expression, or reported by the parser
		}
		keys := map[string]bool{}
		dynamic := false
		var excludes []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			switch k.Value {
			case "include", "exclude":
				if v.Kind == yaml.ScalarNode && isExprOnly(v.Value) {
					dynamic = true
					continue
				}
				if v.Kind != yaml.SequenceNode {
					l.errPos(pos(v), "Unexpected value '%s': matrix %s must be a list of mappings", workflow.ShortValue(v), k.Value)
					continue
				}
				for _, e := range v.Content {
					if e.Kind == yaml.ScalarNode && isExprOnly(e.Value) {
						dynamic = true
						continue
					}
					if e.Kind != yaml.MappingNode {
						l.errPos(pos(e), "Unexpected value '%s': each matrix %s entry must be a mapping", workflow.ShortValue(e), k.Value)
						continue
					}
					if k.Value == "exclude" {
						excludes = append(excludes, e)
					}
				}
			default:
				keys[k.Value] = true
				switch v.Kind {
				case yaml.SequenceNode:
					if len(v.Content) == 0 {
						l.errPos(pos(v), "Matrix vector '%s' does not contain any values", k.Value)
					}
				case yaml.ScalarNode:
					if isExprOnly(v.Value) {
						dynamic = true
					} else {
						l.errPos(pos(v), "Unexpected value '%s': matrix vector '%s' must be a list", workflow.ShortValue(v), k.Value)
					}
				case yaml.MappingNode:
					l.errPos(pos(v), "A mapping was not expected")
				}
			}
		}
		if dynamic {
			continue
		}
		l.matrixSize(m)
		for _, e := range excludes {
			for i := 0; i+1 < len(e.Content); i += 2 {
				if k := e.Content[i]; !keys[k.Value] {
					l.errPos(pos(k), "Matrix exclude key '%s' does not match any key within the matrix", k.Value)
				}
			}
		}
	}
}

// matrixSize reports a static matrix of more jobs than a matrix may make
// (plan.MaxMatrixJobs), at the matrix. Other expansion errors are
// reported above in GitHub's words.
func (l *linter) matrixSize(m *yaml.Node) {
	if plan.HasExpressions(m) {
		return
	}
	_, err := plan.ExpandMatrix(m, plan.Literal)
	var big *plan.MatrixTooLarge
	if errors.As(err, &big) {
		l.errPos(pos(m), "%s", upperFirst(big.Error()))
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
