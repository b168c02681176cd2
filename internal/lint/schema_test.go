package lint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// schemaDef is the part of a definition of GitHub's workflow schema
// (actions/languageservices workflow-v1.0.json) this test reads.
type schemaDef struct {
	OneOf   []string `json:"one-of"`
	Mapping *struct {
		Properties map[string]json.RawMessage `json:"properties"`
	} `json:"mapping"`
}

// schemaPlaces put a key of a schema mapping into a workflow: K is the
// key's line (at the right indentation), the rest makes a valid file.
var schemaPlaces = map[string]string{
	"workflow-root-strict":                    "on: push\nK: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-defaults":                       "on: push\ndefaults:\n  K: {}\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"job-defaults":                            "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    defaults:\n      K: {}\n",
	"workflow-defaults-run":                   "on: push\ndefaults:\n  run:\n    K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"permissions-mapping":                     "on: push\npermissions:\n  K: read\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-dispatch-mapping":               "on:\n  workflow_dispatch:\n    K: {}\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-dispatch-input":                 "on:\n  workflow_dispatch:\n    inputs:\n      i:\n        K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-call-mapping":                   "on:\n  workflow_call:\n    K: {}\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-call-input-definition":          "on:\n  workflow_call:\n    inputs:\n      i:\n        type: string\n        K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-call-secret-mapping-definition": "on:\n  workflow_call:\n    secrets:\n      s:\n        K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"workflow-call-output-definition":         "on:\n  workflow_call:\n    outputs:\n      o:\n        value: x\n        K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"cron-mapping":                            "on:\n  schedule:\n    - cron: '0 0 * * *'\n      K: x\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n",
	"job-factory":                             "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    K: x\n",
	"workflow-job":                            "on: push\njobs:\n  j:\n    uses: o/r/.github/workflows/w.yml@v1\n    K: x\n",
	"strategy":                                "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    strategy:\n      matrix: {a: [1]}\n      K: x\n",
	"matrix":                                  "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    strategy:\n      matrix:\n        a: [1]\n        K: []\n",
	"runs-on-mapping":                         "on: push\njobs:\n  j:\n    runs-on:\n      group: g\n      K: x\n    steps: [{run: a}]\n",
	"concurrency-mapping":                     "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    concurrency:\n      group: g\n      K: x\n",
	"job-environment-mapping":                 "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    environment:\n      name: e\n      K: x\n",
	"job-defaults-run":                        "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    defaults:\n      run:\n        K: x\n",
	"snapshot-mapping":                        "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    snapshot:\n      image-name: i\n      K: x\n",
	"container-mapping":                       "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    container:\n      image: i\n      K: x\n",
	"container-registry-credentials":          "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    container:\n      image: i\n      credentials:\n        K: x\n",
	"service-container-mapping":               "on: push\njobs:\n  j:\n    runs-on: x\n    steps: [{run: a}]\n    services:\n      s:\n        image: i\n        K: x\n",
	"run-step":                                "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: a\n        K: x\n",
	"regular-step":                            "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - uses: o/r@v1\n        K: x\n",
	"wait-step":                               "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - wait: x\n        K: x\n",
	"wait-all-step":                           "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - wait-all: true\n        K: x\n",
	"cancel-step":                             "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - cancel: x\n        K: x\n",
	"parallel-step":                           "on: push\njobs:\n  j:\n    runs-on: x\n    steps:\n      - K: [{run: a}]\n",
}

// TestKnowsGitHubSchema walks GitHub's newest workflow schema
// ($CONVEYOR_COMPAT_DIR/workflow-parser/workflow-v1.0.json): every event
// and every key of every mapping it defines must be known to Conveyor's
// parser (no "Unexpected value" for it, in the strict mode). When the
// schema is updated, this test lists what Conveyor is missing.
func TestKnowsGitHubSchema(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(compatDir(t), "workflow-parser", "workflow-v1.0.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema struct {
		Definitions map[string]schemaDef `json:"definitions"`
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	defs := schema.Definitions
	keysOf := func(name string) []string {
		d, ok := defs[name]
		if !ok || d.Mapping == nil {
			return nil
		}
		var ks []string
		for k := range d.Mapping.Properties {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	var missing []string
	// Events, and the keys each takes.
	events := keysOf("on-mapping-strict")
	if len(events) == 0 {
		t.Fatal("no events in the schema's on-mapping-strict")
	}
	for _, ev := range events {
		if !workflow.IsEvent(ev) {
			missing = append(missing, "event "+ev)
			continue
		}
		var ref string
		if err := json.Unmarshal(defs["on-mapping-strict"].Mapping.Properties[ev], &ref); err != nil {
			continue
		}
		for _, alt := range append([]string{ref}, defs[ref].OneOf...) {
			for _, k := range keysOf(alt) {
				if ev != "workflow_dispatch" && ev != "workflow_call" && !slices.Contains(workflow.EventKeys(ev), k) {
					missing = append(missing, "on."+ev+"."+k)
				}
			}
		}
	}
	// Keys of every other mapping, by parsing a file that uses each.
	for def, place := range schemaPlaces {
		keys := keysOf(def)
		if len(keys) == 0 {
			t.Errorf("the schema has no mapping %q any more: update schemaPlaces", def)
		}
		for _, k := range keys {
			src := strings.Replace(place, "K:", k+":", 1)
			_, probs := workflow.ParseLimits([]byte(src), "w.yml", workflow.Limits{Strict: true})
			for _, p := range probs {
				if p.Message == "Unexpected value '"+k+"'" {
					missing = append(missing, def+"."+k)
					break
				}
			}
		}
	}
	// Every mapping of the schema is either placed above or an event's.
	for name, d := range defs {
		if d.Mapping == nil || len(d.Mapping.Properties) == 0 || schemaPlaces[name] != "" || name == "workflow-root" || name == "on-mapping" || name == "on-mapping-strict" {
			continue
		}
		if !strings.HasSuffix(name, "-mapping") || !eventMapping(defs, name) {
			t.Errorf("schema mapping %q is not checked: add it to schemaPlaces", name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("Conveyor does not know these parts of GitHub's workflow schema:\n  %s", strings.Join(missing, "\n  "))
	}
}

// eventMapping says a definition is the mapping form of an event.
func eventMapping(defs map[string]schemaDef, name string) bool {
	for _, raw := range defs["on-mapping-strict"].Mapping.Properties {
		var ref string
		if json.Unmarshal(raw, &ref) == nil && slices.Contains(defs[ref].OneOf, name) {
			return true
		}
	}
	return false
}
