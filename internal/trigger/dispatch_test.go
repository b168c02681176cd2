package trigger

import (
	"maps"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

func TestDispatchInputs(t *testing.T) {
	tr := &workflow.Trigger{Event: "workflow_dispatch", Inputs: []*workflow.Input{
		{Name: "env", Type: "choice", Options: []string{"dev", "prod"}, Default: "dev", HasDefault: true},
		{Name: "debug", Type: "boolean"},
		{Name: "count", Type: "number", Default: "3", HasDefault: true},
		{Name: "tag", Type: "string", Required: true},
		{Name: "note"},
		{Name: "target", Type: "environment"},
	}}
	tests := []struct {
		name  string
		given map[string]string
		want  map[string]string
		err   string // non-empty: the error holds it
	}{
		{"defaults", map[string]string{"tag": "v1"},
			map[string]string{"env": "dev", "debug": "false", "count": "3", "tag": "v1", "note": "", "target": ""}, ""},
		{"all given", map[string]string{"env": "prod", "debug": "TRUE", "count": "-1.5", "tag": "v2", "note": "hi", "target": "staging"},
			map[string]string{"env": "prod", "debug": "true", "count": "-1.5", "tag": "v2", "note": "hi", "target": "staging"}, ""},
		{"empty takes default", map[string]string{"tag": "v1", "count": ""},
			map[string]string{"env": "dev", "debug": "false", "count": "3", "tag": "v1", "note": "", "target": ""}, ""},
		{"unknown", map[string]string{"tag": "v1", "zzz": "1", "aaa": "2"}, nil, "unexpected inputs provided: aaa, zzz"},
		{"required missing", map[string]string{}, nil, "input tag is required"},
		{"required empty", map[string]string{"tag": ""}, nil, "input tag is required"},
		{"bad boolean", map[string]string{"tag": "v1", "debug": "yes"}, nil, `input debug must be true or false, not "yes"`},
		{"bad number", map[string]string{"tag": "v1", "count": "three"}, nil, `input count must be a number`},
		{"nan", map[string]string{"tag": "v1", "count": "NaN"}, nil, `input count must be a number`},
		{"bad choice", map[string]string{"tag": "v1", "env": "qa"}, nil, `input env must be one of [dev, prod], not "qa"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DispatchInputs(tr, tt.given)
			if tt.err != "" {
				if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want invalid with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("inputs %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDispatchInputsNoTrigger(t *testing.T) {
	for _, tr := range []*workflow.Trigger{nil, {Event: "push"}} {
		if _, err := DispatchInputs(tr, nil); !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "workflow_dispatch") {
			t.Errorf("%v: error %v", tr, err)
		}
	}
	got, err := DispatchInputs(&workflow.Trigger{Event: "workflow_dispatch"}, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("no inputs: %v, %v", got, err)
	}
}
