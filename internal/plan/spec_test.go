package plan

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/jobspec"
	"github.com/conveyor-ci/conveyor/internal/testenv"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// roundTrip compiles job id of wf, encodes, decodes and plans it again,
// and says how the result differs from what the workflow file gives the
// executor ("" for nothing).
func roundTrip(wf *workflow.Workflow, id, event string) (string, error) {
	spec, err := Spec(wf, id, event)
	if err != nil {
		return "", err
	}
	b, err := jobspec.EncodeJob(spec)
	if err != nil {
		return "", err
	}
	dec, err := jobspec.DecodeJob(b)
	if err != nil {
		return "", err
	}
	pw, err := FromSpec(dec)
	if err != nil {
		return "", err
	}
	want, err := Compile([]*workflow.Workflow{wf}, Select{Event: event, AnyEvent: true, Jobs: []string{id}})
	if err != nil {
		return "", err
	}
	var wj *Job
	for _, j := range want.Workflows[0].Jobs {
		if j.ID == id {
			wj = j
		}
	}
	got := pw.Jobs[0]
	if pw.File != wf.File || pw.Name != want.Workflows[0].Name || len(pw.Jobs) != 1 {
		return fmt.Sprintf("workflow %q %q (%d jobs), want %q %q", pw.File, pw.Name, len(pw.Jobs), wf.File, want.Workflows[0].Name), nil
	}
	if a, b := summary(got), summary(wj); a != b {
		return fmt.Sprintf("plan job\n%s\nwant\n%s", a, b), nil
	}
	if d := diffMatrix(got.Source, wj.Source); d != "" {
		return d, nil
	}
	if a, b := bare(got.Source), bare(wj.Source); !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("job\n%#v\nwant\n%#v", a, b), nil
	}
	src := pw.Source
	if src.File != wf.File || src.Name != wf.Name || !reflect.DeepEqual(bareKVs(src.Env), bareKVs(wf.Env)) ||
		!reflect.DeepEqual(src.Defaults, wf.Defaults) || !reflect.DeepEqual(src.Permissions, wf.Permissions) ||
		!reflect.DeepEqual(src.Concurrency, wf.Concurrency) {
		return fmt.Sprintf("workflow level\n%#v\nwant\n%#v", src, wf), nil
	}
	if a, b := trigger(src.Trigger(event)), trigger(wf.Trigger(event)); !reflect.DeepEqual(a, b) {
		return fmt.Sprintf("trigger %#v, want %#v", a, b), nil
	}
	return "", nil
}

func summary(j *Job) string {
	b, _ := json.Marshal(j)
	return string(b)
}

// bare is a copy of j as the executor reads it, for comparison: without
// the YAML nodes (compared on their own), empty lists as nil.
func bare(j *workflow.Job) workflow.Job {
	c := *j
	c.Env, c.Outputs, c.With, c.Secrets = bareKVs(c.Env), bareKVs(c.Outputs), bareKVs(c.With), bareKVs(c.Secrets)
	if len(c.Needs) == 0 {
		c.Needs, c.NeedsPos = nil, nil
	}
	if c.Strategy != nil {
		s := *c.Strategy
		s.Matrix = nil
		c.Strategy = &s
	}
	c.Container = bareContainer(c.Container)
	var svcs []*workflow.Service
	for _, s := range c.Services {
		svcs = append(svcs, &workflow.Service{Name: s.Name, Container: *bareContainer(&s.Container)})
	}
	c.Services = svcs
	var steps []*workflow.Step
	for _, s := range c.Steps {
		sc := *s
		sc.Env, sc.With = bareKVs(sc.Env), bareKVs(sc.With)
		steps = append(steps, &sc)
	}
	c.Steps = steps
	return c
}

func bareContainer(c *workflow.Container) *workflow.Container {
	if c == nil {
		return nil
	}
	cc := *c
	cc.Env = bareKVs(cc.Env)
	if len(cc.Volumes) == 0 {
		cc.Volumes = nil
	}
	if len(cc.Ports) == 0 {
		cc.Ports = nil
	}
	return &cc
}

func bareKVs(in []workflow.KV) []workflow.KV {
	var out []workflow.KV
	for _, kv := range in {
		kv.Node = nil
		out = append(out, kv)
	}
	return out
}

func trigger(t *workflow.Trigger) []workflow.Input {
	if t == nil {
		return nil
	}
	var out []workflow.Input
	for _, in := range t.Inputs {
		c := *in
		c.Description = "" // not the executor's business
		if len(c.Options) == 0 {
			c.Options = nil
		}
		out = append(out, c)
	}
	return out
}

// diffMatrix compares the matrices of two jobs node by node.
func diffMatrix(got, want *workflow.Job) string {
	var g, w *yaml.Node
	if got.Strategy != nil {
		g = got.Strategy.Matrix
	}
	if want.Strategy != nil {
		w = want.Strategy.Matrix
	}
	return diffNode(g, w, "matrix")
}

func diffNode(g, w *yaml.Node, path string) string {
	for w != nil && (w.Kind == yaml.AliasNode || w.Kind == yaml.DocumentNode) {
		if w.Kind == yaml.AliasNode {
			w = w.Alias
		} else {
			w = w.Content[0]
		}
	}
	switch {
	case g == nil && w == nil:
		return ""
	case g == nil || w == nil:
		return fmt.Sprintf("%s: %v, want %v", path, g, w)
	case g.Kind != w.Kind || g.Tag != w.Tag || g.Line != w.Line || g.Column != w.Column || len(g.Content) != len(w.Content):
		return fmt.Sprintf("%s: %+v, want %+v", path, *g, *w)
	case g.Kind == yaml.ScalarNode && g.Value != w.Value:
		return fmt.Sprintf("%s: %q, want %q", path, g.Value, w.Value)
	}
	for i := range g.Content {
		if d := diffNode(g.Content[i], w.Content[i], path+"."+strconv.Itoa(i)); d != "" {
			return d
		}
	}
	return ""
}

// corpus is every workflow file the round trip is tried on: this
// package's golden inputs, the act and workflow-parser corpora when
// present, and the workflows inlined in the server's and jobrun's tests.
func corpus(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	add := func(name string, b []byte) { files[name] = b }
	globs := []string{"testdata/*.yml", "../workflow/testdata/*.yml"}
	for _, g := range globs {
		ms, _ := filepath.Glob(g)
		for _, m := range ms {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			add(m, b)
		}
	}
	for _, sub := range []string{"act", "workflow-parser"} {
		root := testenv.CompatDir(t, sub)
		err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || (!strings.HasSuffix(p, ".yml") && !strings.HasSuffix(p, ".yaml")) {
				return err
			}
			if strings.HasPrefix(filepath.Base(p), "action.") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err == nil && strings.Contains(string(b), "jobs:") {
				add(strings.TrimPrefix(p, root+"/"), b)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"../server", "../jobrun", "../e2e", "../agent"} {
		for name, b := range inlineWorkflows(t, dir) {
			add(name, b)
		}
	}
	return files
}

// inlineWorkflows are the string constants of dir's Go tests that are
// workflow files.
func inlineWorkflows(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	fset := token.NewFileSet()
	ms, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, m := range ms {
		f, err := parser.ParseFile(fset, m, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || !strings.HasPrefix(lit.Value, "`") {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && strings.Contains(s, "\njobs:") && strings.Contains(s, "steps:") {
				out[fset.Position(lit.Pos()).String()] = []byte(s)
			}
			return true
		})
	}
	return out
}

// Every job of every workflow in the corpus compiles to a jobspec.Job
// that encodes, decodes and plans to what the workflow file gives the
// executor: the same job, positions and matrix nodes included.
func TestSpecRoundTrip(t *testing.T) {
	files := corpus(t)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	jobs, refused := 0, 0
	inline := 0
	for _, name := range names {
		wf, probs := workflow.Parse(files[name], ".github/workflows/"+filepath.Base(name))
		if len(probs) > 0 || wf == nil {
			continue
		}
		if strings.Contains(name, "_test.go:") {
			inline++
		}
		events := []string{"push"}
		for _, tr := range wf.On {
			events = append(events, tr.Event)
		}
		for _, j := range wf.Jobs {
			for _, ev := range events {
				d, err := roundTrip(wf, j.ID, ev)
				if err != nil {
					if errs.KindOf(err) != errs.Invalid {
						t.Errorf("%s: job %s: %v", name, j.ID, err)
					}
					refused++
					break
				}
				if d != "" {
					t.Errorf("%s: job %s, event %s: %s", name, j.ID, ev, d)
				}
			}
			jobs++
		}
	}
	t.Logf("%d workflow files (%d inlined in tests), %d jobs round-tripped, %d refused by the plan", len(files), inline, jobs-refused, refused)
	if inline == 0 || jobs < 50 {
		t.Errorf("the corpus is too small: %d jobs, %d inlined workflows", jobs, inline)
	}
}

// FromSpec reads any bytes DecodeJob accepts without a panic, and what it
// plans compiles again to a fixed point.
func FuzzFromSpec(f *testing.F) {
	ms, _ := filepath.Glob("testdata/*.yml")
	for _, m := range ms {
		b, err := os.ReadFile(m)
		if err != nil {
			f.Fatal(err)
		}
		wf, probs := workflow.Parse(b, m)
		if len(probs) > 0 {
			continue
		}
		for _, j := range wf.Jobs {
			if s, err := Spec(wf, j.ID, "push"); err == nil {
				enc, _ := jobspec.EncodeJob(s)
				f.Add(enc)
			}
		}
	}
	f.Add([]byte(`{"version":2,"id":"a","strategy":{"matrix":{"kind":"mapping","content":[{"kind":"scalar"}]}}}`))
	f.Add([]byte(`{"version":2,"id":"a","strategy":{"matrix":{"kind":"sequence","content":[{"kind":"what"}]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := jobspec.DecodeJob(b)
		if err != nil {
			return
		}
		pw, err := FromSpec(j)
		if err != nil {
			return
		}
		event := ""
		if j.Workflow.Trigger != nil {
			event = j.Workflow.Trigger.Event
		}
		once, err := Spec(pw.Source, j.ID, event)
		if err != nil {
			t.Fatalf("a planned job does not compile again: %v", err)
		}
		pw2, err := FromSpec(once)
		if err != nil {
			t.Fatalf("a compiled job does not plan again: %v", err)
		}
		twice, err := Spec(pw2.Source, j.ID, event)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := jobspec.EncodeJob(once)
		c, _ := jobspec.EncodeJob(twice)
		if string(a) != string(c) {
			t.Fatalf("not a fixed point:\n%s\n%s", a, c)
		}
	})
}
