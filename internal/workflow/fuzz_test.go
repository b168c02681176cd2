package workflow

import "testing"

var fuzzSeeds = []string{
	"on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: echo\n",
	"on: [push, pull_request]\njobs:\n  a:\n    uses: o/r/.github/workflows/x.yml@v1\n    secrets: inherit\n",
	"steps:\n  - plugin: x\n    inputs: {a: 1}\ntriggers:\n  github:\n    events:\n      - eventName: push\n        filter: 'true'\n",
	"a: &x 1\nb: *x\n",
	"on:\n  schedule:\n    - cron: '* * * * *'\n  workflow_call:\n    inputs:\n      a: {type: string, required: true}\njobs: {}\n",
	"runs:\n  using: composite\n  steps:\n    - run: x\n      shell: bash\n",
	"!!bool x: [",
	"jobs:\n  a:\n    strategy:\n      matrix: {os: [], include: 3}\n",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w, probs := Parse(data, "f.yml")
		if w == nil {
			t.Fatal("nil workflow")
		}
		for _, p := range probs {
			if p.Pos.Line < 1 || p.Pos.Col < 1 {
				t.Fatalf("bad position %v", p)
			}
		}
	})
}

func FuzzParseAction(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, _ := ParseAction(data, "action.yml")
		if a == nil {
			t.Fatal("nil action")
		}
	})
}
