package lint

import "testing"

// FuzzBytesWith lints any input whose reusable workflows all resolve to the
// input itself: calls nest until a limit stops them, and nothing panics.
func FuzzBytesWith(f *testing.F) {
	for _, s := range []string{
		"on: push\njobs:\n  b:\n    runs-on: x\n    steps:\n      - run: echo ${{ github.sha }}\n",
		"on: [push, workflow_call]\npermissions: {actions: write}\njobs:\n  a:\n    permissions: read-all\n    uses: o/r/.github/workflows/x.yml@v1\n  b:\n    uses: ./.github/workflows/x.yml\n    with: {a: 1}\n    secrets: inherit\n",
		"on:\n  workflow_call:\n    inputs:\n      a: {type: string, required: true}\n    secrets:\n      s: {required: true}\njobs:\n  a:\n    uses: o/r/.github/workflows/x.yml@v1\n    permissions: write-all\n",
		"on:\n  workflow_dispatch:\n    x: 1\njobs:\n  a:\n    strategy:\n      matrix: {os: [], include: 3}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := Options{Resolve: func(string) ([]byte, bool) { return data, true }}
		_, probs := BytesWith(data, "f.yml", opts)
		for _, p := range probs {
			if p.Pos.Line < 1 || p.Pos.Col < 1 || p.File == "" {
				t.Fatalf("bad problem %v", p)
			}
		}
	})
}
