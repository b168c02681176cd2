package lint

import (
	"errors"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/trigger"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// filters reports the CEL filters of on: (and of serverless-cd triggers:)
// that do not compile, at the error's position within the filter.
func (l *linter) filters() {
	for _, t := range l.w.On {
		if t.Filter == "" {
			continue
		}
		_, err := trigger.CompileFilter(t.Filter)
		if err == nil {
			continue
		}
		pos, msg := t.FilterPos, err.Error()
		var fe *trigger.FilterError
		if errors.As(err, &fe) {
			msg = fe.Msg
			if n, keyCol := scalarAt(l.w.Node, t.FilterPos, 0); n != nil {
				pos = offsetPos(n, fe.Offset, keyCol)
			}
		}
		l.errPos(pos, "Invalid filter: %s", msg)
	}
}

// scalarAt finds the scalar node at pos and the column of its mapping key.
func scalarAt(n *yaml.Node, pos workflow.Pos, keyCol int) (*yaml.Node, int) {
	if n == nil {
		return nil, 0
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Line == pos.Line && n.Column == pos.Col {
			return n, keyCol
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if s, k := scalarAt(n.Content[i+1], pos, n.Content[i].Column); s != nil {
				return s, k
			}
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			if s, k := scalarAt(c, pos, keyCol); s != nil {
				return s, k
			}
		}
	}
	return nil, 0
}
