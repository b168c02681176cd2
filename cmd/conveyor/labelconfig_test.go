package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// conveyor run --label-config: each job gets its runs-on labels' profile
// (here on the host backend, which refuses a job asking for a runtime:
// the refusal proves the profile reached the backend), labels that
// disagree fail their job naming both, and a mistake in the file stops
// the run at its file:line:col.
func TestRunLabelConfig(t *testing.T) {
	dir := writeWorkflow(t, `on: push
jobs:
  plain:
    runs-on: ubuntu-latest
    steps: [{run: echo plain-ran}]
  sandboxed:
    runs-on: [ubuntu-latest, Sandboxed]
    steps: [{run: echo must-not-run}]
  torn:
    runs-on: [sandboxed, kata]
    steps: [{run: echo must-not-run}]
`)
	cfg := filepath.Join(t.TempDir(), "labels.yml")
	if err := os.WriteFile(cfg, []byte("machines:\n  big: {cpus: 2}\nlabels:\n  sandboxed: {runtime: runsc, machine: big}\n  kata: {runtime: kata-runtime}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIn(t, dir, "--no-color", "--label-config", cfg)
	if code != 1 || !strings.Contains(out, "plain-ran") || strings.Contains(out, "must-not-run") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"label profile: runtime runsc (label sandboxed), machine big (label sandboxed)",
		`asks for runtime "runsc": the host backend runs no containers`,
		`runs-on labels "sandboxed" and "kata" ask for different runtimes ("runsc", "kata-runtime")`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// --runtime (every job's) and a label's runtime must agree.
	code, out, errOut = runIn(t, dir, "--no-color", "--label-config", cfg, "--runtime", "kata-runtime", "-j", "sandboxed")
	if code != 1 || !strings.Contains(out, `the job's runtime "kata-runtime" (the repository's setting, or --runtime) and runtime "runsc" of its runs-on label "sandboxed" differ`) {
		t.Errorf("--runtime against the label's: exit %d\n%s\n%s", code, out, errOut)
	}

	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("labels:\n  gpu: {machine: huge}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runIn(t, dir, "--label-config", bad)
	if code != 2 || !strings.Contains(errOut, bad+`:2:18: unknown machine "huge" (the file names none)`) || strings.Contains(out, "plain-ran") {
		t.Errorf("bad label config: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runIn(t, dir, "--label-config", filepath.Join(t.TempDir(), "missing.yml"))
	if code != 2 || !strings.Contains(errOut, "missing.yml") {
		t.Errorf("missing label config: exit %d\n%s", code, errOut)
	}
}
