package workflow

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "line:col: message prefix", in order; nil = clean
	}{
		{"clean", "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: echo\n", nil},
		{"unknown key", "on: push\nfoo: 1\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: echo\n", []string{"2:1: Unexpected value 'foo'"}},
		{"missing runs-on", "on: push\njobs:\n  b:\n    steps:\n      - run: echo\n", []string{"4:5: Required property is missing: runs-on"}},
		{"bad job id", "on: push\njobs:\n  1b:\n    runs-on: x\n    steps:\n      - run: echo\n", []string{"3:3: The identifier '1b' is invalid"}},
		{"duplicate key", "on: push\njobs:\n  b:\n    runs-on: x\n    runs-on: y\n    steps:\n      - run: echo\n", []string{"5:5: 'runs-on' is already defined"}},
		{"duplicate step id", "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - id: s\n        run: a\n      - id: S\n        run: b\n", []string{"8:13: The identifier 'S' may not be used more than once"}},
		{"run and uses", "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n        uses: a/b@v1\n", []string{"7:9: Unexpected value 'uses'"}},
		{"neither run nor uses", "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - name: a\n", []string{"6:9: Required property is missing: run"}},
		{"bad uses", "on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - uses: nope\n", []string{"6:15: Expected format {org}/{repo}[/path]@ref"}},
		{"anchor", "on: push\njobs:\n  b:\n    runs-on: &r x\n    steps:\n      - run: a\n", []string{"4:14: Anchors are not currently supported. Remove the anchor 'r'"}},
		{"yaml error", "on: push\njobs:\n  b: [\n", []string{"3:6: YAML syntax error"}},
		{"expression in name", "name: ${{ github.ref }}\non: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n", []string{"1:7: A template expression is not allowed in this context"}},
		{"sequence not expected", "on: push\nname: [a]\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n", []string{"2:7: A sequence was not expected"}},
		{"bad permission", "on: push\npermissions:\n  contents: maybe\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n", []string{"3:13: Unexpected value 'maybe'"}},
		{"unknown event", "on: pushh\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n", []string{"1:5: Unexpected value 'pushh'"}},
		{"bad secrets", "on: push\njobs:\n  b:\n    uses: o/r/.github/workflows/w.yml@v1\n    secrets: inherrit\n", []string{"5:14: Unexpected value 'inherrit'"}},
		{"explicit tag", "on: push\njobs:\n  b:\n    runs-on: !!int x\n    steps:\n      - run: a\n", []string{"4:14: The value 'x' on line 4 and column 14 is invalid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := Parse([]byte(tt.src), "w.yml")
			if len(probs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(probs), len(tt.want), probs)
			}
			for i, w := range tt.want {
				got := strings.TrimPrefix(probs[i].Error(), "w.yml:")
				if !strings.HasPrefix(got, w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got, w)
				}
			}
		})
	}
}

func TestParseModel(t *testing.T) {
	src := `name: CI
on:
  push:
    branches: [main]
    filter: body.ref == "refs/heads/main"
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [a, b]
        default: a
env:
  A: 1
jobs:
  build:
    runs-on: [self-hosted, linux]
    needs: [x]
    if: true
    environment: {name: prod, url: "https://x"}
    strategy:
      matrix:
        os: [a, b]
      fail-fast: false
    container: node:20
    steps:
      - id: s1
        run: echo ${{ matrix.os }}
        continue-on-error: true
  x:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
`
	w, probs := Parse([]byte(src), "w.yml")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	push := w.Trigger("push")
	if push == nil || push.Branches[0] != "main" || push.Filter != `body.ref == "refs/heads/main"` || push.FilterPos != (Pos{5, 13}) {
		t.Errorf("push = %+v", push)
	}
	if in := w.Trigger("workflow_dispatch").Inputs[0]; in.Name != "level" || in.Type != "choice" || len(in.Options) != 2 || !in.HasDefault {
		t.Errorf("input = %+v", in)
	}
	if w.Env[0].Key != "A" || w.Env[0].Value != "1" {
		t.Errorf("env = %+v", w.Env)
	}
	b := w.Job("build")
	if b.If != "true" || b.Environment != "prod" || b.EnvironmentURL != "https://x" || b.Container.Image != "node:20" || b.Strategy.FailFast != "false" {
		t.Errorf("build = %+v", b)
	}
	if len(b.RunsOn.Labels) != 2 || b.NeedsPos[0] != (Pos{17, 13}) {
		t.Errorf("runs-on/needs = %+v %v", b.RunsOn, b.NeedsPos)
	}
	if s := b.Steps[0]; s.ID != "s1" || s.ContinueOnError != "true" || s.RunPos != (Pos{27, 14}) {
		t.Errorf("step = %+v", s)
	}
	if s := w.Job("x").Steps[0]; s.Uses != "actions/checkout@v4" || s.With[0].Value != "0" {
		t.Errorf("step = %+v", s)
	}
}

func TestParseServerless(t *testing.T) {
	src := `triggers:
  github:
    events:
      - eventName: push
        filter: 'body.ref == "refs/heads/main"'
steps:
  - plugin: git-checkout
    inputs: {depth: 1}
  - run: make
    id: build
`
	w, probs := Parse([]byte(src), "s.yml")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	if w.Dialect != "serverless-cd" || len(w.Jobs) != 1 || w.Jobs[0].ID != "default" || w.Jobs[0].RunsOn.Labels[0] != "ubuntu-latest" {
		t.Fatalf("w = %+v", w)
	}
	steps := w.Jobs[0].Steps
	if steps[0].Uses != "git-checkout" || steps[0].With[0].Key != "depth" || steps[1].Run != "make" {
		t.Errorf("steps = %+v %+v", steps[0], steps[1])
	}
	if tr := w.Trigger("push"); tr == nil || tr.Filter == "" || tr.FilterPos.Line != 5 {
		t.Errorf("trigger = %+v", tr)
	}
}

func TestParseAction(t *testing.T) {
	a, probs := ParseAction([]byte("name: x\ninputs:\n  who: {default: me}\nruns:\n  using: composite\n  steps:\n    - run: echo\n      shell: bash\n"), "action.yml")
	if len(probs) > 0 || a.Runs.Using != "composite" || len(a.Runs.Steps) != 1 || a.Inputs[0].Default != "me" {
		t.Fatalf("%+v %v", a, probs)
	}
	_, probs = ParseAction([]byte("runs:\n  using: docker\n"), "action.yml")
	if len(probs) != 1 || !strings.Contains(probs[0].Message, "image") {
		t.Fatalf("%v", probs)
	}
}

func TestParseLimitsProblems(t *testing.T) {
	const three = "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: a}]\n  b:\n    runs-on: x\n    steps: [{run: b}]\n  c:\n    runs-on: x\n    steps: [{run: c}]\n"
	tests := []struct {
		name   string
		src    string
		limits Limits
		want   []string
	}{
		{"jobs within limit", three, Limits{MaxJobs: 3}, nil},
		{"too many jobs", three, Limits{MaxJobs: 2}, []string{"9:3: The workflow may not contain more than 2 jobs"}},
		// "on: push\njobs: {}" costs: the name "w.yml" 36, the mapping 24,
		// "on" 54, "push" 58, "jobs" 58, the empty mapping 24 = 254.
		{"size within budget", "on: push\njobs: {}\n", Limits{MaxResultSize: 254}, []string{"2:7: The workflow must contain at least one job"}},
		{"size over budget", "on: push\njobs: {}\n", Limits{MaxResultSize: 253}, []string{"2:7: Maximum object size exceeded"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := ParseLimits([]byte(tt.src), "w.yml", tt.limits)
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

func TestResultBytes(t *testing.T) {
	// A number and a null cost an object; a string an object, 26 bytes and
	// two per UTF-16 unit (the emoji is two); an expression only its text.
	src := "a: 1\nb: ~\nc: é😀\nd: ${{ x }}\n"
	w, _ := Parse([]byte("on: push\n"), "f")
	if got, want := ResultBytes("f", w.Node), 28+24+54+58; got != want {
		t.Errorf("ResultBytes = %d, want %d", got, want)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	want := 24 + 4*52 + 24 + 24 + (50 + 2*3) + (50 + 2)
	if got := TreeBytes(doc.Content[0]); got != want {
		t.Errorf("TreeBytes = %d, want %d", got, want)
	}
}

// TestOnLooseAndStrict: GitHub's runtime parser (workflow-root) takes any
// value under an event but workflow_call; the strict schema of the language
// service (workflow-root-strict) does not. These files run on GitHub.
func TestOnLooseAndStrict(t *testing.T) {
	const jobs = "jobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n"
	tests := []struct {
		name, on string
		strict   []string // problems under Strict; none in the default mode
	}{
		{"release branches", "on:\n  release:\n    branches: [main]\n", []string{"3:5: Unexpected value 'branches'"}},
		{"create tags", "on:\n  create:\n    tags: ['v*']\n", []string{"3:5: Unexpected value 'tags'"}},
		{"branch typo", "on:\n  push:\n    branch: main\n", []string{"3:5: Unexpected value 'branch'"}},
		{"dispatch sequence", "on:\n  workflow_dispatch: []\n", []string{"2:22: A sequence was not expected"}},
		{"dispatch input name", "on:\n  workflow_dispatch:\n    inputs:\n      a:\n        name: A\n        type: string\n", []string{"5:9: Unexpected value 'name'"}},
		{"dispatch unknown keys", "on:\n  workflow_dispatch:\n    something: x\n    inputs:\n      a:\n        bogus: 1\n  push:\n    something: x\n",
			[]string{"3:5: Unexpected value 'something'", "6:9: Unexpected value 'bogus'", "8:5: Unexpected value 'something'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, probs := Parse([]byte(tt.on+jobs), "w.yml"); len(probs) > 0 {
				t.Errorf("rejected a file GitHub runs:\n%v", probs)
			}
			_, probs := ParseLimits([]byte(tt.on+jobs), "w.yml", Limits{Strict: true})
			var got []string
			for _, p := range probs {
				got = append(got, p.Pos.String()+": "+p.Message)
			}
			if strings.Join(got, "\n") != strings.Join(tt.strict, "\n") {
				t.Errorf("strict problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.strict, "\n"))
			}
		})
	}
}

// TestWorkflowCallStaysStrict: workflow_call is typed in both schemas.
func TestWorkflowCallStaysStrict(t *testing.T) {
	src := "on:\n  workflow_call:\n    branches: [main]\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n"
	_, probs := Parse([]byte(src), "w.yml")
	if len(probs) != 1 || probs[0].Pos.String() != "3:5" {
		t.Fatalf("problems = %v, want one at 3:5", probs)
	}
}

// A YAML syntax error points at the real line and column, not at the
// start of the enclosing block.
func TestYAMLSyntaxErrorPosition(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"on: push\njobs:\n  b:\n    runs-on: x\n   steps: []\n", "5:4: YAML syntax error: "},
		{"on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a\n     - run: b\n", "7:6: YAML syntax error: "},
		{"on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: a: b\n", "6:14: YAML syntax error: mapping value is not allowed"},
		{"on: push\njobs:\n\tb: 1\n", "3:1: YAML syntax error: "},
		{"on: push\njobs: {a: 1\n", "2:7: YAML syntax error: "},
		{"on: push\njobs:\n  a:\n    steps:\n      - run: 'unterminated\n", "5:14: YAML syntax error: "},
		// goccy points before the decoder's line here: the decoder's is kept.
		{"key: value\n  other: x\n", "2:1: YAML syntax error: mapping values are not allowed"},
	} {
		_, probs := Parse([]byte(tc.src), "w.yml")
		if len(probs) != 1 || !strings.HasPrefix(strings.TrimPrefix(probs[0].Error(), "w.yml:"), tc.want) {
			t.Errorf("%q: %v, want %q", tc.src, probs, tc.want)
		}
	}
}
