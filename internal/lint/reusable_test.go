package lint

import (
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// lintCalls lints src with reusable workflows served from files and returns
// its problems as "file:line:col: message".
func lintCalls(t *testing.T, src string, files map[string]string, opts Options) []string {
	t.Helper()
	opts.Resolve = func(uses string) ([]byte, bool) {
		s, ok := files[uses]
		return []byte(s), ok
	}
	_, probs := BytesWith([]byte(src), "w.yml", opts)
	var out []string
	for _, p := range probs {
		out = append(out, p.Error())
	}
	return out
}

func TestReusablePermissions(t *testing.T) {
	const use = "    uses: o/r/.github/workflows/c.yml@v1\n"
	run := "    runs-on: x\n    steps: [{run: a}]\n"
	tests := []struct {
		name   string
		caller string
		called string
		policy string
		want   []string // prefixes, in order
	}{
		{"workflow asks more than the caller's workflow level",
			"on: push\npermissions:\n  issues: read\njobs:\n  call:\n" + use,
			"on: workflow_call\npermissions:\n  issues: write\njobs:\n  j:\n" + run, "",
			[]string{"w.yml:5:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The workflow 'o/r/.github/workflows/c.yml@v1' is requesting 'issues: write', but is only allowed 'issues: read'."}},
		{"nested job asks more than the calling job allows",
			"on: push\njobs:\n  call:\n    permissions: {statuses: read, checks: write}\n" + use,
			"on: workflow_call\njobs:\n  j:\n    name: Build it\n    permissions: {checks: write, statuses: write, pages: read}\n" + run, "",
			[]string{"w.yml:3:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The nested job 'Build it' is requesting 'pages: read, statuses: write', but is only allowed 'pages: none, statuses: read'."}},
		{"the calling job overrides the workflow level",
			"on: push\npermissions: read-all\njobs:\n  call:\n    permissions: write-all\n" + use,
			"on: workflow_call\npermissions:\n  pages: write\njobs:\n  j:\n" + run, "", nil},
		{"the caller's write-all allows a nested job more than the called workflow level",
			"on: push\npermissions: write-all\njobs:\n  call:\n" + use,
			"on: workflow_call\npermissions:\n  actions: read\njobs:\n  j:\n    permissions:\n      actions: write\n" + run, "", nil},
		{"limited-read policy allows contents and packages read",
			"on: push\njobs:\n  call:\n" + use,
			"on: workflow_call\npermissions:\n  contents: read\n  packages: read\njobs:\n  j:\n" + run, PolicyLimitedRead, nil},
		{"limited-read policy allows no more",
			"on: push\njobs:\n  call:\n" + use,
			"on: workflow_call\njobs:\n  j:\n    permissions:\n      contents: write\n" + run, PolicyLimitedRead,
			[]string{"w.yml:3:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The nested job 'j' is requesting 'contents: write', but is only allowed 'contents: read'."}},
		{"write policy allows write",
			"on: push\njobs:\n  call:\n" + use,
			"on: workflow_call\njobs:\n  j:\n    permissions:\n      contents: write\n" + run, PolicyWrite, nil},
		{"read-all allows no write",
			"on: push\njobs:\n  call:\n    permissions: read-all\n" + use,
			"on: workflow_call\njobs:\n  j:\n    permissions: write-all\n" + run, "",
			[]string{"w.yml:3:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The nested job 'j' is requesting 'actions: write, attestations: write, checks: write,"}},
		{"{} allows nothing",
			"on: push\njobs:\n  call:\n    permissions: {}\n" + use,
			"on: workflow_call\npermissions: read-all\njobs:\n  j:\n" + run, "",
			[]string{"w.yml:3:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The workflow 'o/r/.github/workflows/c.yml@v1' is requesting 'actions: read, attestations: read,"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := lintCalls(t, tt.caller, map[string]string{"o/r/.github/workflows/c.yml@v1": tt.called}, Options{PermissionsPolicy: tt.policy})
			checkPrefixes(t, got, tt.want)
		})
	}
}

func checkPrefixes(t *testing.T, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d = %q, want prefix %q", i, got[i], want[i])
		}
	}
}

// A chain a -> b -> c -> d of reusable workflows; each level passes on what
// it writes.
func chain(bPerms, cPerms string) map[string]string {
	return map[string]string{
		"o/r/.github/workflows/b.yml@v1": "on: workflow_call\njobs:\n  to-c:\n" + bPerms + "    uses: o/r/.github/workflows/c.yml@v1\n",
		"o/r/.github/workflows/c.yml@v1": "on: workflow_call\n" + cPerms + "jobs:\n  to-d:\n    uses: o/r/.github/workflows/d.yml@v1\n",
		"o/r/.github/workflows/d.yml@v1": "on: workflow_call\njobs:\n  d:\n    runs-on: x\n    steps: [{run: a}]\n",
	}
}

func TestReusableNested(t *testing.T) {
	top := "on: push\npermissions:\n  actions: write\njobs:\n  to-b:\n    uses: o/r/.github/workflows/b.yml@v1\n"
	tests := []struct {
		name   string
		files  map[string]string
		limits workflow.Limits
		want   []string
	}{
		{"within the depth", chain("", ""), workflow.Limits{MaxNestedCalls: 3}, nil},
		{"too deep", chain("", ""), workflow.Limits{MaxNestedCalls: 2},
			[]string{"o/r/.github/workflows/c.yml@v1:4:11: Nested reusable workflow depth exceeded 2."}},
		{"a nested caller job narrows what the next level may ask",
			chain("    permissions: {actions: read}\n", "permissions: {actions: write}\n"), workflow.Limits{},
			[]string{"o/r/.github/workflows/b.yml@v1:3:3: Error calling workflow 'o/r/.github/workflows/c.yml@v1'. The workflow 'o/r/.github/workflows/c.yml@v1' is requesting 'actions: write', but is only allowed 'actions: read'."}},
		{"a nested job asks no more than the top allows",
			chain("    permissions: {actions: write}\n", "permissions: {actions: read}\n"), workflow.Limits{}, nil},
		{"jobs of called workflows count", chain("", ""), workflow.Limits{MaxJobs: 4}, nil},
		{"too many jobs with the called ones", chain("", ""), workflow.Limits{MaxJobs: 2},
			[]string{"o/r/.github/workflows/b.yml@v1:4:11: The workflow may not contain more than 2 jobs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkPrefixes(t, lintCalls(t, top, tt.files, Options{Limits: tt.limits}), tt.want)
		})
	}
}

func TestReusableResultSize(t *testing.T) {
	called := "on: workflow_call\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n"
	top := "on: push\njobs:\n  a:\n    uses: o/r/.github/workflows/c.yml@v1\n  b:\n    uses: o/r/.github/workflows/c.yml@v1\n"
	files := map[string]string{"o/r/.github/workflows/c.yml@v1": called}
	w, _ := workflow.Parse([]byte(top), "w.yml")
	c, _ := workflow.Parse([]byte(called), "o/r/.github/workflows/c.yml@v1")
	// Each call charges the called file again, its name once.
	once := workflow.ResultBytes(w.File, w.Node) + workflow.ResultBytes(c.File, c.Node)
	twice := once + workflow.TreeBytes(c.Node)
	checkPrefixes(t, lintCalls(t, top, files, Options{Limits: workflow.Limits{MaxResultSize: twice}}), nil)
	checkPrefixes(t, lintCalls(t, top, files, Options{Limits: workflow.Limits{MaxResultSize: twice - 1}}),
		[]string{"w.yml:6:11: Error from called workflow o/r/.github/workflows/c.yml@v1: Maximum object size exceeded"})
	checkPrefixes(t, lintCalls(t, top, files, Options{Limits: workflow.Limits{MaxResultSize: once - 1}}),
		[]string{"w.yml:4:11: Error from called workflow o/r/.github/workflows/c.yml@v1: Maximum object size exceeded"})
}

func TestReusableCallsItself(t *testing.T) {
	// A workflow that calls itself stops at the depth limit, once.
	self := "on: [push, workflow_call]\njobs:\n  a:\n    uses: o/r/.github/workflows/self.yml@v1\n  b:\n    uses: o/r/.github/workflows/self.yml@v1\n"
	got := lintCalls(t, self, map[string]string{"o/r/.github/workflows/self.yml@v1": self}, Options{})
	checkPrefixes(t, got, []string{"o/r/.github/workflows/self.yml@v1:4:11: Nested reusable workflow depth exceeded 9."})
}
