package lint

import (
	"strings"
	"testing"
)

func TestFilters(t *testing.T) {
	jobs := "jobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n"
	tests := []struct {
		name string
		src  string
		want []string // "line:col: message prefix"; nil = clean
	}{
		{"valid", "on:\n  push:\n    filter: body.ref == 'refs/heads/main'\n" + jobs, nil},
		{"plain", "on:\n  push:\n    filter: body.ref == bdy\n" + jobs,
			[]string{"3:25: Invalid filter: undeclared reference to 'bdy'"}},
		{"syntax", "on:\n  push:\n    filter: body.ref ==\n" + jobs,
			[]string{"3:24: Invalid filter: Syntax error"}},
		{"quoted", "on:\n  push:\n    filter: \"body.ref + 1 == x\"\n" + jobs,
			[]string{"3:30: Invalid filter: undeclared reference to 'x'"}},
		{"not bool", "on:\n  push:\n    filter: body.ref + 'x'\n" + jobs,
			[]string{"3:13: Invalid filter: the filter is of type"}},
		{"block", "on:\n  push:\n    filter: |\n      body.ref == 'a' &&\n        nope\n" + jobs,
			[]string{"5:9: Invalid filter: undeclared reference to 'nope'"}},
		{"serverless", "steps:\n  - run: x\ntriggers:\n  github:\n    events:\n      - eventName: push\n        filter: body.ref in [1,\n",
			[]string{"7:32: Invalid filter: Syntax error: missing ']'"}},
		{"serverless ok", "steps:\n  - run: x\ntriggers:\n  github:\n    events:\n      - eventName: push\n        filter: body.ref in ['refs/heads/master']\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := Bytes([]byte(tt.src), "w.yml")
			if len(probs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.want), probs)
			}
			for i, w := range tt.want {
				if got := strings.TrimPrefix(probs[i].Error(), "w.yml:"); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, w)
				}
			}
		})
	}
}
