package lint

import (
	"strings"
	"testing"
)

func TestLint(t *testing.T) {
	head := "on: push\njobs:\n"
	tests := []struct {
		name string
		src  string
		want []string // "line:col: message prefix" in order; nil = clean
	}{
		{"clean", head + "  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ github.sha }}\n", nil},
		{"unknown need", head + "  a:\n    runs-on: x\n    needs: [b]\n    steps:\n      - run: x\n", []string{"5:13: Job 'a' depends on unknown job 'b'."}},
		{"cycle", head + "  r:\n    runs-on: x\n    steps: [{run: x}]\n  a:\n    needs: b\n    runs-on: x\n    steps: [{run: x}]\n  b:\n    needs: a\n    runs-on: x\n    steps: [{run: x}]\n",
			[]string{"7:12: Job 'a' depends on job 'b' which creates a cycle in the dependency graph (a -> b -> a).", "11:12: Job 'b' depends on job 'a'"}},
		{"unclosed", head + "  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ github.sha\n", []string{"6:19: The expression is not closed"}},
		{"empty expr", head + "  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ }}\n", []string{"6:19: An expression was expected"}},
		{"bad if", head + "  a:\n    runs-on: x\n    steps:\n      - run: x\n        if: a ==\n", []string{"7:13: "}},
		{"secrets in runs-on", head + "  a:\n    runs-on: ${{ secrets.x }}\n    steps:\n      - run: x\n", []string{"4:18: Unrecognized named-value: 'secrets'"}},
		{"secrets in step env ok", head + "  a:\n    runs-on: x\n    steps:\n      - run: x\n        env: {A: '${{ secrets.x }}'}\n", nil},
		{"block scalar", head + "  a:\n    runs-on: x\n    steps:\n      - run: |\n          echo hi\n          echo ${{ }}\n", []string{"8:16: An expression was expected"}},
		{"empty vector", head + "  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: []\n    steps: [{run: x}]\n", []string{"7:13: Matrix vector 'os' does not contain any values"}},
		{"bad exclude", head + "  a:\n    runs-on: x\n    strategy:\n      matrix:\n        os: [a]\n        exclude:\n          - arch: b\n    steps: [{run: x}]\n", []string{"9:13: Matrix exclude key 'arch' does not match"}},
		{"include not list", head + "  a:\n    runs-on: x\n    strategy:\n      matrix:\n        include: 3\n    steps: [{run: x}]\n", []string{"7:18: Unexpected value '3'"}},
		{"step uses leaves the repo", head + "  a:\n    runs-on: x\n    steps:\n      - uses: ./../../etc\n", []string{"6:15: \"./../../etc\" leaves the repository"}},
		{"job uses leaves the repo", head + "  a:\n    uses: ./a/../../../etc/passwd\n", []string{"4:11: \"./a/../../../etc/passwd\" leaves the repository"}},
		{"remote uses with ..", head + "  a:\n    runs-on: x\n    steps:\n      - uses: o/r/../x@v1\n", []string{"6:15: \"o/r/../x@v1\": the path inside the repository must not hold"}},
		{"remote uses option-like ref", head + "  a:\n    runs-on: x\n    steps:\n      - uses: o/r@-x\n", []string{"6:15: \"o/r@-x\": \"-x\" is not a valid git ref"}},
		{"step uses a workflow", head + "  a:\n    runs-on: x\n    steps:\n      - uses: o/r/.github/workflows/w.yml@v1\n", []string{"6:15: o/r/.github/workflows/w.yml@v1 is a reusable workflow"}},
		{"remote uses fine", head + "  a:\n    runs-on: x\n    steps:\n      - uses: actions/setup-go@v5\n  b:\n    uses: o/r/.github/workflows/w.yml@main\n", nil},
		{"local uses inside is fine", head + "  a:\n    runs-on: x\n    steps:\n      - uses: ./a/../.github/actions/x\n", nil},
		{"no root job", head + "  a:\n    needs: a\n    runs-on: x\n    steps: [{run: x}]\n", []string{"4:12: Job 'a' depends on job 'a'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, probs := Bytes([]byte(tt.src), "w.yml")
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

func TestReusable(t *testing.T) {
	called := "on:\n  workflow_call:\n    inputs:\n      foo: {type: string, required: true}\n    secrets:\n      s: {required: true}\njobs:\n  j:\n    runs-on: x\n    steps: [{run: x}]\n"
	src := "on: push\njobs:\n  a:\n    uses: o/r/.github/workflows/c.yml@v1\n    with:\n      bar: 1\n"
	_, probs := BytesWith([]byte(src), "w.yml", Options{Resolve: func(string) ([]byte, bool) { return []byte(called), true }})
	want := []string{"4:11: Input foo is required", "4:11: Secret s is required", "6:12: Invalid input, bar is not defined"}
	if len(probs) != len(want) {
		t.Fatalf("%v", probs)
	}
	for i, w := range want {
		if !strings.HasPrefix(strings.TrimPrefix(probs[i].Error(), "w.yml:"), w) {
			t.Errorf("%d: %q want %q", i, probs[i], w)
		}
	}
}
