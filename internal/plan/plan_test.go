package plan

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parseFile(t *testing.T, name string) *workflow.Workflow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	wf, probs := workflow.Parse(data, ".github/workflows/"+name)
	if len(probs) > 0 {
		t.Fatalf("parse %s: %v", name, probs)
	}
	return wf
}

// TestCompileGolden compiles testdata/*.yml for event push and compares the
// JSON plan with testdata/<case>.json. Run `go test ./internal/plan -update`
// to rewrite the goldens after an intended change.
func TestCompileGolden(t *testing.T) {
	tests := []struct {
		golden string
		files  []string
		jobs   []string
	}{
		{golden: "matrix", files: []string{"matrix.yml"}},
		{golden: "needs", files: []string{"needs.yml"}},
		{golden: "needs-select-deploy", files: []string{"needs.yml"}, jobs: []string{"deploy"}},
		{golden: "needs-select-test", files: []string{"needs.yml", "matrix.yml"}, jobs: []string{"test"}},
		{golden: "reusable", files: []string{"reusable.yml"}},
		{golden: "not-triggered", files: []string{"notpush.yml"}},
		{golden: "all", files: []string{"matrix.yml", "needs.yml", "reusable.yml", "notpush.yml"}},
	}
	for _, tc := range tests {
		t.Run(tc.golden, func(t *testing.T) {
			var wfs []*workflow.Workflow
			for _, f := range tc.files {
				wfs = append(wfs, parseFile(t, f))
			}
			p, err := Compile(wfs, Select{Event: "push", Jobs: tc.jobs})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", tc.golden+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("plan for %v differs from %s (run with -update if intended)\n--- got\n%s\n--- want\n%s", tc.files, path, got, want)
			}
		})
	}
}

// TestCompileFacts checks the semantic facts the goldens hold, so that a
// wrong golden written with -update cannot hide them.
func TestCompileFacts(t *testing.T) {
	needs := parseFile(t, "needs.yml")
	matrix := parseFile(t, "matrix.yml")
	reusable := parseFile(t, "reusable.yml")
	notpush := parseFile(t, "notpush.yml")

	jobIDs := func(p *Plan) []string {
		var ids []string
		for _, w := range p.Workflows {
			for _, j := range w.Jobs {
				ids = append(ids, w.File+":"+j.ID)
			}
		}
		return ids
	}
	tests := []struct {
		name    string
		wfs     []*workflow.Workflow
		sel     Select
		wantIDs []string
		wantErr string
	}{
		{"all push", []*workflow.Workflow{needs, notpush}, Select{Event: "push"},
			[]string{".github/workflows/needs.yml:build", ".github/workflows/needs.yml:lint", ".github/workflows/needs.yml:test", ".github/workflows/needs.yml:deploy", ".github/workflows/needs.yml:unrelated"}, ""},
		{"pull_request only", []*workflow.Workflow{needs, notpush}, Select{Event: "pull_request"},
			[]string{".github/workflows/notpush.yml:pr"}, ""},
		{"any event", []*workflow.Workflow{notpush}, Select{Event: "push", AnyEvent: true},
			[]string{".github/workflows/notpush.yml:pr"}, ""},
		{"-j deploy keeps transitive needs in file order", []*workflow.Workflow{needs}, Select{Event: "push", Jobs: []string{"deploy"}},
			[]string{".github/workflows/needs.yml:build", ".github/workflows/needs.yml:lint", ".github/workflows/needs.yml:test", ".github/workflows/needs.yml:deploy"}, ""},
		{"-j test", []*workflow.Workflow{needs}, Select{Event: "push", Jobs: []string{"test"}},
			[]string{".github/workflows/needs.yml:build", ".github/workflows/needs.yml:test"}, ""},
		{"-j two jobs", []*workflow.Workflow{needs}, Select{Event: "push", Jobs: []string{"lint", "unrelated"}},
			[]string{".github/workflows/needs.yml:lint", ".github/workflows/needs.yml:unrelated"}, ""},
		{"-j across workflows", []*workflow.Workflow{needs, matrix}, Select{Event: "push", Jobs: []string{"dynamic"}},
			[]string{".github/workflows/matrix.yml:test", ".github/workflows/matrix.yml:dynamic"}, ""},
		{"-j reusable caller", []*workflow.Workflow{reusable}, Select{Event: "push", Jobs: []string{"call-local"}},
			[]string{".github/workflows/reusable.yml:prep", ".github/workflows/reusable.yml:call-local"}, ""},
		{"-j unknown", []*workflow.Workflow{needs}, Select{Event: "push", Jobs: []string{"nope"}}, nil, "no job nope"},
		{"-j job of an untriggered workflow", []*workflow.Workflow{notpush}, Select{Event: "push", Jobs: []string{"pr"}}, nil, "no job pr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.wfs, tc.sel)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := jobIDs(p); !reflect.DeepEqual(got, tc.wantIDs) {
				t.Errorf("jobs = %v, want %v", got, tc.wantIDs)
			}
		})
	}

	// Job details.
	p, err := Compile([]*workflow.Workflow{matrix, needs, reusable}, Select{Event: "push"})
	if err != nil {
		t.Fatal(err)
	}
	find := func(id string) *Job {
		for _, w := range p.Workflows {
			for _, j := range w.Jobs {
				if j.ID == id {
					return j
				}
			}
		}
		t.Fatalf("no job %s", id)
		return nil
	}
	if j := find("test"); j.Name != "Test" || j.MatrixDynamic || len(j.Matrix) == 0 {
		t.Errorf("static matrix job: name %q dynamic %v combos %d", j.Name, j.MatrixDynamic, len(j.Matrix))
	}
	for _, id := range []string{"dynamic", "dynamic-item"} {
		if j := find(id); !j.MatrixDynamic || j.Matrix != nil {
			t.Errorf("%s: matrix-dynamic %v, matrix %v", id, j.MatrixDynamic, j.Matrix)
		}
	}
	if j := find("deploy"); !reflect.DeepEqual(j.Needs, []string{"test", "lint"}) || !reflect.DeepEqual(j.RunsOn, []string{"linux", "group:deployers"}) {
		t.Errorf("deploy: needs %v runs-on %v", j.Needs, j.RunsOn)
	}
	if j := find("test"); j.Image != "" {
		t.Errorf("matrix test has image %q", j.Image)
	}
	if j := find("call-local"); j.Uses != "./.github/workflows/callee.yml" || len(j.Steps) != 0 {
		t.Errorf("call-local: uses %q steps %d", j.Uses, len(j.Steps))
	}
	var kinds []string
	for _, s := range find("deploy").Steps {
		kinds = append(kinds, s.Kind+"|"+s.Name)
	}
	wantKinds := []string{"local-action|./.github/actions/deploy", "docker|docker://alpine:3.20", "remote-action|actions/setup-go@v5", "checkout|Actions/Checkout@main", "run|Run ./notify.sh ${{ env.A }}"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Errorf("deploy step kinds = %q, want %q", kinds, wantKinds)
	}
	var bnames []string
	for _, s := range find("build").Steps {
		bnames = append(bnames, s.Kind+"|"+s.ID+"|"+s.Name)
	}
	if want := []string{"checkout||actions/checkout@v4", "run|b|Run make build"}; !reflect.DeepEqual(bnames, want) {
		t.Errorf("build steps = %q, want %q", bnames, want)
	}
}

func TestStepKind(t *testing.T) {
	tests := map[string]string{
		"":                           "run",
		"docker://alpine":            "docker",
		"./a":                        "local-action",
		"../a":                       "local-action",
		"actions/checkout@v4":        "checkout",
		"ACTIONS/CHECKOUT@v4":        "checkout",
		"actions/checkout":           "checkout",
		"actions/checkout-extra@v1":  "remote-action",
		"octo/repo/path@v1":          "remote-action",
		"actions/setup-node@v4":      "remote-action",
		"myorg/actions/checkout@v1":  "remote-action",
		"docker://ghcr.io/a/b:1.0.0": "docker",
	}
	for uses, want := range tests {
		if got := StepKind(uses); got != want {
			t.Errorf("StepKind(%q) = %q, want %q", uses, got, want)
		}
	}
}

func TestStepName(t *testing.T) {
	tests := []struct {
		s    workflow.Step
		i    int
		want string
	}{
		{workflow.Step{Name: "N", Run: "x"}, 0, "N"},
		{workflow.Step{Uses: "a/b@v1"}, 0, "a/b@v1"},
		{workflow.Step{Run: "\n  echo one\necho two\n"}, 0, "Run echo one"},
		{workflow.Step{}, 11, "step 12"},
		{workflow.Step{}, 0, "step 1"},
	}
	for _, tc := range tests {
		if got := StepName(&tc.s, tc.i); got != tc.want {
			t.Errorf("StepName(%+v, %d) = %q, want %q", tc.s, tc.i, got, tc.want)
		}
	}
}

func TestOrder(t *testing.T) {
	mk := func(spec ...string) *Workflow {
		// spec entries: "id" or "id:need1,need2"
		w := &Workflow{}
		for _, s := range spec {
			id, needs, _ := strings.Cut(s, ":")
			j := &Job{ID: id}
			if needs != "" {
				j.Needs = strings.Split(needs, ",")
			}
			w.Jobs = append(w.Jobs, j)
		}
		return w
	}
	tests := []struct {
		name    string
		w       *Workflow
		want    []string
		wantErr string
	}{
		{"no needs keeps file order", mk("c", "a", "b"), []string{"c", "a", "b"}, ""},
		{"chain declared backwards", mk("c:b", "b:a", "a"), []string{"a", "b", "c"}, ""},
		{"diamond", mk("d:b,c", "b:a", "c:a", "a"), []string{"a", "b", "c", "d"}, ""},
		{"needs listed out of file order", mk("a", "b", "c:b,a"), []string{"a", "b", "c"}, ""},
		{"self cycle", mk("a:a"), nil, "dependency cycle: a -> a"},
		{"three cycle", mk("a:b", "b:c", "c:a"), nil, "dependency cycle: a -> b -> c -> a"},
		{"unknown need", mk("a:zzz"), nil, `job "a" needs unknown job "zzz"`},
		// The message must name the cycle only: x needs the cycle but is not
		// part of it.
		{"cycle reached through a non-member", mk("x:a", "a:b", "b:a"), nil, "dependency cycle: a -> b -> a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.w.Order()
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Order() = %v, want error %q", got, tc.wantErr)
				}
				msg := err.Error()
				if !strings.Contains(msg, tc.wantErr) {
					t.Fatalf("Order() error %q, want it to contain %q", msg, tc.wantErr)
				}
				if strings.Contains(tc.name, "non-member") && strings.Contains(msg, "x ->") {
					t.Errorf("Order() error %q names job x, which is not in the cycle", msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Order() = %v, want %v", got, tc.want)
			}
		})
	}
}

// Background steps (GitHub's newest schema) parse, but the plan refuses
// them with their position rather than running them in the foreground.
func TestBackgroundStepsRefused(t *testing.T) {
	for _, step := range []string{"- run: a\n        background: true", "- wait: s", "- wait-all:", "- cancel: s", "- parallel:\n          - run: a"} {
		src := "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: b\n      " + step + "\n"
		wf, probs := workflow.Parse([]byte(src), "w.yml")
		if len(probs) > 0 {
			t.Fatalf("%q: %v", step, probs)
		}
		_, err := Compile([]*workflow.Workflow{wf}, Select{Event: "push"})
		if err == nil || !strings.Contains(err.Error(), "7:9: step 2 uses") || !strings.Contains(err.Error(), "not supported by Conveyor yet") {
			t.Errorf("%q: err = %v", step, err)
		}
	}
}
